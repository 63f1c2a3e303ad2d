// Must not compile: dtsim::engine links nothing of sim/, so this header is not found.
#include "sim/des/sim_time.hpp"
