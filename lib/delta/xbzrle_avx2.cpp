// xbzrle_avx2.cpp — the XBZRLE encoder built with -mavx2 (see xbzrle_encode.inc).
#define HDE_ISA avx2
#include "delta/xbzrle_encode.inc"
