# Turns a file into a C++ source defining a byte array, at build time:
#   cmake -DINPUT=in -DOUTPUT=out.cpp -DSYMBOL=name -P EmbedFile.cmake
# defines `const unsigned char dtsim::embedded::<name>[]` and `<name>_size`.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/EmbedFile.cmake; do not edit.\n"
  "#include <cstddef>\n"
  "namespace dtsim::embedded {\n"
  "extern const unsigned char ${SYMBOL}[] = {\n${bytes}\n0x00};\n"
  "extern const std::size_t ${SYMBOL}_size = ${size};\n"
  "}  // namespace dtsim::embedded\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
