// Must not compile: dtsim::des knows nothing of training.
#include "sim/train/run_result.hpp"
