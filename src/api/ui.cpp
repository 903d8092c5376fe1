#include "api/ui.h"

#include <cstddef>

namespace sluice {

namespace embedded {
// Generated at build time from src/api/ui/index.html (src/api/ui/embed.cmake).
extern const unsigned char chat_page[];
extern const std::size_t chat_page_size;
}  // namespace embedded

std::string_view chat_page_html() {
    return {reinterpret_cast<const char*>(embedded::chat_page), embedded::chat_page_size};
}

}  // namespace sluice
