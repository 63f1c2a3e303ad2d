#include <doctest/doctest.h>

#include "sim/des/units.hpp"

using namespace dtsim;

TEST_CASE("durations") {
  CHECK(parse_duration("50us").ns() == 50'000);
  CHECK(parse_duration("2 ms").ns() == 2'000'000);
  CHECK(parse_duration("1.5s").ns() == 1'500'000'000);
  CHECK(parse_duration("10ns").ns() == 10);
  CHECK(parse_duration("2min").ns() == 120'000'000'000);
  CHECK(parse_duration("0s").ns() == 0);
}

TEST_CASE("bandwidths: bits are divided by 8, prefixes are decimal or binary") {
  CHECK(parse_bandwidth("10Gbps") == doctest::Approx(1.25e9));
  CHECK(parse_bandwidth("1.25 GB/s") == doctest::Approx(1.25e9));
  CHECK(parse_bandwidth("100 Mbps") == doctest::Approx(12.5e6));
  CHECK(parse_bandwidth("1 GiB/s") == doctest::Approx(1073741824.0));
}

TEST_CASE("compute speeds and sizes") {
  CHECK(parse_flops("2 TFLOPS") == doctest::Approx(2e12));
  CHECK(parse_flops("500 GFLOPS") == doctest::Approx(5e11));
  CHECK(parse_bytes("64 MiB") == 67108864.0);
  CHECK(parse_bytes("100MB") == 1e8);
}

TEST_CASE("bad quantities name the accepted units") {
  SUBCASE("bare number") {
    CHECK_THROWS_WITH_AS(parse_duration("50"), doctest::Contains("the unit is missing"), UnitError);
    CHECK_THROWS_WITH_AS(parse_duration("50"), doctest::Contains("ns, us"), UnitError);
  }
  SUBCASE("unknown unit") {
    CHECK_THROWS_WITH_AS(parse_bandwidth("10 Gbit"), doctest::Contains("unknown unit 'Gbit'"),
                         UnitError);
  }
  SUBCASE("no number") { CHECK_THROWS_AS(parse_flops("fast"), UnitError); }
  SUBCASE("negative") { CHECK_THROWS_AS(parse_bytes("-1 MB"), UnitError); }
  SUBCASE("wrong kind of unit") { CHECK_THROWS_AS(parse_duration("5 GB"), UnitError); }
  SUBCASE("values that would overflow virtual time") {
    CHECK_THROWS_WITH_AS(parse_bandwidth("1e-300 bps"),
                         doctest::Contains("between 1 bps and 1e18 B/s"), UnitError);
    CHECK_THROWS_AS(parse_bandwidth("0 Gbps"), UnitError);
    CHECK_THROWS_AS(parse_flops("1e-300 FLOPS"), UnitError);
    CHECK_THROWS_AS(parse_duration("1e10 s"), UnitError);
    CHECK_THROWS_AS(parse_bytes("1e30B"), UnitError);
  }
}
