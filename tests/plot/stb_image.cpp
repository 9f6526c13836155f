// stb_image's PNG decoder, compiled into the plot test only: it reads back what
// the plots wrote, an implementation independent of the writer.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb_image.h>
