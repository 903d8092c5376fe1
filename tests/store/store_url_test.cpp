#include "store/store_url.h"

#include <gtest/gtest.h>

#include "core/api_error.h"
#include "store/store.h"

namespace sluice {
namespace {

TEST(store_url, sqlite_paths) {
    EXPECT_EQ(std::get<sqlite_url>(parse_store_url("sqlite://sluice-data/sluice.db")).path,
              "sluice-data/sluice.db");
    EXPECT_EQ(std::get<sqlite_url>(parse_store_url("sqlite:///var/lib/sluice.db")).path,
              "/var/lib/sluice.db");
    EXPECT_EQ(std::get<sqlite_url>(parse_store_url("sqlite://:memory:")).path, ":memory:");
}

TEST(store_url, redis_host_port_db) {
    const auto full = std::get<redis_url>(parse_store_url("redis://10.0.0.5:6380/2"));
    EXPECT_EQ(full.host, "10.0.0.5");
    EXPECT_EQ(full.port, 6380);
    EXPECT_EQ(full.db, 2);
    const auto bare = std::get<redis_url>(parse_store_url("redis://cache"));
    EXPECT_EQ(bare.host, "cache");
    EXPECT_EQ(bare.port, 6379);
    EXPECT_EQ(bare.db, 0);
}

TEST(store_url, bad_urls_name_the_key_and_what_is_allowed) {
    for (const char* url : {"", "postgres://x", "sqlite://", "redis://", "redis://h:0/0", "redis://h:99999",
                            "redis://h:1/x", "redis://user:pw@h:1/0", "redis://h:12ab"}) {
        try {
            parse_store_url(url);
            ADD_FAILURE() << "accepted " << url;
        } catch (const config_error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("store.url"), std::string::npos) << what;
            EXPECT_NE(what.find("sqlite://"), std::string::npos) << what;
            EXPECT_NE(what.find("redis://"), std::string::npos) << what;
        }
    }
    EXPECT_THROW(open_store({.url = "mysql://db"}), config_error);
}

}  // namespace
}  // namespace sluice
