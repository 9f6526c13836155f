// stb_image_write's implementation, compiled once into the project: the PNG
// writer is a single header, so the tools need no stb library at run time.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
