setr sys.layer, 0                        ; pc 0
setr rq.src_zp, 0                        ; pc 1
setr rq.pre_shift, 0                     ; pc 2
setr rq.zp, -128                         ; pc 3
setr rq.qmin, -128                       ; pc 4
setr rq.qmax, 127                        ; pc 5
setr mm.a_zp, 6                          ; pc 6
setr cv.w, 6                             ; pc 7
setr cv.c, 2                             ; pc 8
setr cv.kh, 3                            ; pc 9
setr cv.kw, 3                            ; pc 10
setr cv.sh, 1                            ; pc 11
setr cv.sw, 1                            ; pc 12
setr cv.dh, 1                            ; pc 13
setr cv.dw, 1                            ; pc 14
setr cv.pad_left, 1                      ; pc 15
setr cv.w_out, 6                         ; pc 16
setr mm.w_row, 18                        ; pc 17
setr dma.planes, 1                       ; pc 18
setr dma.rows, 1                         ; pc 19
setr dma.row_bytes, 36                   ; pc 20
setr dma.dram_row, 0                     ; pc 21
setr dma.sram_row, 0                     ; pc 22
setr dma.dram_plane, 0                   ; pc 23
setr dma.sram_plane, 0                   ; pc 24
load wbuf, 0x0, 0x0                      ; pc 25
setr dma.row_bytes, 24                   ; pc 26
load pbuf, 0x0, 0x40                     ; pc 27
setr dma.row_bytes, 72                   ; pc 28
load abuf, 0x0, 0x1000                   ; pc 29
setr mm.a, 0                             ; pc 30
setr cv.h, 6                             ; pc 31
setr cv.pad_top, 1                       ; pc 32
setr mm.m, 36                            ; pc 33
setr mm.acc_row, 2                       ; pc 34
setr mm.n, 2                             ; pc 35
setr mm.k, 18                            ; pc 36
setr cv.c0, 0                            ; pc 37
matmul conv, 0, int8, 0, 0x0, 0x0        ; pc 38
setr rq.params, 0                        ; pc 39
setr rq.m, 36                            ; pc 40
setr rq.n, 2                             ; pc 41
setr rq.src_row, 2                       ; pc 42
setr rq.dst_row, 2                       ; pc 43
requant acc, i8, half_even, 0x40000, 0x0 ; pc 44
setr dma.dram_row, 2                     ; pc 45
setr dma.sram_row, 2                     ; pc 46
store abuf, 0x40000, 0x10c0              ; pc 47
setr sys.layer, 1                        ; pc 48
setr ea.a_zp, -128                       ; pc 49
setr ea.b_zp, 6                          ; pc 50
setr ea.a_mult, 1073741824               ; pc 51
setr ea.a_shift, 31                      ; pc 52
setr ea.b_mult, 2070164380               ; pc 53
setr ea.b_shift, 32                      ; pc 54
setr ea.pre_shift, 20                    ; pc 55
setr ea.out_mult, 1410307871             ; pc 56
setr ea.out_shift, 50                    ; pc 57
setr ea.zp, -43                          ; pc 58
setr ea.qmin, -128                       ; pc 59
setr ea.qmax, 127                        ; pc 60
setr dma.dram_row, 0                     ; pc 61
setr dma.sram_row, 0                     ; pc 62
load abuf, 0x0, 0x10c0                   ; pc 63
load abuf, 0x20000, 0x1000               ; pc 64
setr ea.b, 131072                        ; pc 65
setr ea.len, 72                          ; pc 66
eadd add, half_even, 0x40000, 0x0        ; pc 67
store abuf, 0x40000, 0x1140              ; pc 68
setr sys.layer, 2                        ; pc 69
setr cv.kh, 6                            ; pc 70
setr cv.kw, 6                            ; pc 71
setr cv.pad_left, 0                      ; pc 72
setr cv.w_out, 1                         ; pc 73
setr pl.zp, -43                          ; pc 74
setr pl.pad_right, 0                     ; pc 75
setr pl.count_pad, 0                     ; pc 76
setr pl.mult, 1074028940                 ; pc 77
setr pl.shift, 27                        ; pc 78
setr pl.out_zp, -128                     ; pc 79
setr dma.dram_row, 2                     ; pc 80
setr dma.sram_row, 2                     ; pc 81
load abuf, 0x0, 0x1140                   ; pc 82
setr cv.pad_top, 0                       ; pc 83
setr pl.h_out, 1                         ; pc 84
setr pl.pad_bottom, 0                    ; pc 85
pool avg, 0x40000, 0x0                   ; pc 86
setr dma.row_bytes, 2                    ; pc 87
store abuf, 0x40000, 0x10c0              ; pc 88
mode bf16                                ; pc 89
setr sys.layer, 3                        ; pc 90
setr v.scale, 999949326                  ; pc 91
setr v.zp, -128                          ; pc 92
setr v.len, 2                            ; pc 93
setr dma.dram_row, 0                     ; pc 94
setr dma.sram_row, 0                     ; pc 95
load abuf, 0x0, 0x10c0                   ; pc 96
cvt i8_bf16, 0x0, 0x0                    ; pc 97
setr cp.n0, 1                            ; pc 98
setr cp.n1, 2                            ; pc 99
setr cp.n2, 1                            ; pc 100
setr cp.n3, 1                            ; pc 101
setr cp.s0, 0                            ; pc 102
setr cp.s1, 2                            ; pc 103
setr cp.s2, 4                            ; pc 104
setr cp.s3, 4                            ; pc 105
setr cp.d0, 0                            ; pc 106
setr cp.d1, 2                            ; pc 107
setr cp.d2, 2                            ; pc 108
setr cp.d3, 2                            ; pc 109
setr cp.elem, 2                          ; pc 110
copy vbuf, 0x20000, 0x0                  ; pc 111
setr dma.row_bytes, 4                    ; pc 112
setr dma.dram_row, 2                     ; pc 113
setr dma.sram_row, 2                     ; pc 114
store vbuf, 0x20000, 0x1100              ; pc 115
setr sys.layer, 4                        ; pc 116
setr dma.dram_row, 0                     ; pc 117
setr dma.sram_row, 0                     ; pc 118
load vbuf, 0x0, 0x1100                   ; pc 119
setr v.desc, 0                           ; pc 120
setr v.src2, 65536                       ; pc 121
vop 0x20000, 0x0                         ; pc 122
store vbuf, 0x20000, 0x1080              ; pc 123
halt                                     ; pc 124
