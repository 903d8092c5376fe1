// Asio and Beast are built once here (BOOST_*_SEPARATE_COMPILATION), which keeps every other file
// quick to compile.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
