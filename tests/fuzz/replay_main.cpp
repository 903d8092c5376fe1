// Runs a fuzz target without libFuzzer (so it runs under g++ and in CTest): every file of the
// committed corpus, then a fixed number of deterministic mutations of each. With clang, the same
// target links against -fsanitize=fuzzer instead (`make fuzz`).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
        return 2;
    }
    const int mutations = argc > 2 ? std::atoi(argv[2]) : 2000;
    std::mt19937_64 rng(12345);
    std::size_t runs = 0;
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::vector<std::uint8_t> seed((std::istreambuf_iterator<char>(in)),
                                             std::istreambuf_iterator<char>());
        ++files;
        LLVMFuzzerTestOneInput(seed.data(), seed.size());
        ++runs;
        for (int i = 0; i < mutations; ++i) {
            auto input = seed;
            const int edits = 1 + static_cast<int>(rng() % 8);
            for (int e = 0; e < edits; ++e) {
                const auto op = rng() % 3;
                const auto at = input.empty() ? 0 : rng() % input.size();
                if (op == 0 && !input.empty()) {
                    input[at] = static_cast<std::uint8_t>(rng());
                } else if (op == 1) {
                    input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                                 static_cast<std::uint8_t>(rng()));
                } else if (!input.empty()) {
                    input.erase(input.begin() + static_cast<std::ptrdiff_t>(at));
                }
            }
            LLVMFuzzerTestOneInput(input.data(), input.size());
            ++runs;
        }
    }
    if (files == 0) {
        std::fprintf(stderr, "no corpus files in %s\n", argv[1]);
        return 1;
    }
    std::printf("%zu inputs from %zu corpus files: no property violated\n", runs, files);
    return 0;
}
