// Text made safe for HTML: & < > " ' escaped.
#pragma once

#include <string>
#include <string_view>

namespace dtsim {

std::string html_escape(std::string_view text);

}  // namespace dtsim
