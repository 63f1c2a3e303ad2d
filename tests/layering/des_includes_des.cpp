// Compiles: the control case, a library's own header through its own include root.
#include "sim/des/sim_time.hpp"
int layering_control() { return 0; }
