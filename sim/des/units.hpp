// Parsing of quantities with units, as written in scenarios and on the command line, and
// writing them back for people.
//
// A quantity is a number, optional spaces, and a unit: "50us", "2 ms", "25Gbps", "1.25 GB/s",
// "2 TFLOPS", "64 MiB". Decimal prefixes (K, M, G, T, P) are powers of 10, binary ones
// (Ki, Mi, Gi, Ti) powers of 2. Bandwidth in bits ("bps") is divided by 8. A bare number,
// an unknown unit or a negative value throws UnitError, whose message lists the accepted
// units; callers add file, line and key.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "sim/des/sim_time.hpp"

namespace dtsim {

class UnitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

SimTime parse_duration(std::string_view text);  // ns, us, ms, s, min, h
double parse_flops(std::string_view text);      // FLOPS with K/M/G/T/P prefixes; -> FLOP/s
double parse_bandwidth(std::string_view text);  // bps, Kbps..Tbps, B/s, KB/s.., KiB/s..; -> bytes/s
double parse_bytes(std::string_view text);      // B, KB..TB, KiB..TiB; -> bytes

// `v` with a decimal prefix (K, M, G, T, P) and 4 significant digits: with_prefix(2.5e10,
// "FLOP/s") is "25 GFLOP/s", with_prefix(940600, "B") "940.6 KB".
std::string with_prefix(double v, std::string_view unit);

}  // namespace dtsim
