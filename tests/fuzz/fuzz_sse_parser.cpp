// Fuzz target for the upstream SSE parser. Property: however the byte stream is split into reads,
// the parser yields the same events as when it gets the whole stream at once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "upstream/sse_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The first byte chooses the split pattern; the rest is the stream.
    const std::size_t stride = 1 + data[0] % 17;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

    sluice::sse_parser whole(4096);
    const auto expected = whole.feed(bytes);

    sluice::sse_parser pieces(4096);
    std::vector<sluice::sse_event> got;
    for (std::size_t at = 0; at < bytes.size(); at += stride) {
        for (auto& event : pieces.feed(bytes.substr(at, stride))) got.push_back(std::move(event));
    }
    // The size guard bounds what is carried between reads, so whether it trips depends on the split.
    if (whole.overflowed() || pieces.overflowed()) return 0;
    if (got.size() != expected.size()) std::abort();
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i].data != expected[i].data || got[i].event != expected[i].event ||
            got[i].id != expected[i].id) {
            std::abort();
        }
    }
    return 0;
}
