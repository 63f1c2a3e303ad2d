// Must not compile: reports sit above training.
#include "reports/atomic_file.hpp"
