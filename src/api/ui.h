#pragma once
// The chat page at GET / (SPEC §4): one static HTML file, src/api/ui/index.html, compiled into the
// binary so that `sluice serve` needs no files beside it.
#include <string_view>

namespace sluice {

class router;

// The page, byte for byte as in src/api/ui/index.html (UTF-8).
std::string_view chat_page_html();

// GET / serves the page without a key: the page asks for one and sends it with each API call.
void add_ui_routes(router& routes);

}  // namespace sluice
