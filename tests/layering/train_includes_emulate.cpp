// Must not compile: training knows nothing of emulation, which sits above it.
#include "sim/emulate/transport.hpp"
