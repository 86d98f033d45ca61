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
setr dma.row_bytes, 72                   ; pc 20
setr dma.dram_row, 0                     ; pc 21
setr dma.sram_row, 0                     ; pc 22
setr dma.dram_plane, 0                   ; pc 23
setr dma.sram_plane, 0                   ; pc 24
load wbuf, 0x0, 0x0                      ; pc 25
load abuf, 0x0, 0x1000                   ; pc 26
setr dma.row_bytes, 48                   ; pc 27
load pbuf, 0x0, 0x80                     ; pc 28
setr mm.a, 0                             ; pc 29
setr cv.h, 6                             ; pc 30
setr cv.pad_top, 1                       ; pc 31
setr mm.m, 36                            ; pc 32
setr mm.acc_row, 4                       ; pc 33
setr mm.n, 4                             ; pc 34
setr mm.k, 18                            ; pc 35
setr cv.c0, 0                            ; pc 36
setr cv.cg, 2                            ; pc 37
setr cv.ng, 4                            ; pc 38
matmul gconv, 0, int8, 0, 0x0, 0x0       ; pc 39
setr rq.params, 0                        ; pc 40
setr rq.m, 36                            ; pc 41
setr rq.n, 4                             ; pc 42
setr rq.src_row, 4                       ; pc 43
setr rq.dst_row, 4                       ; pc 44
requant acc, i8, half_even, 0x40000, 0x0 ; pc 45
setr sys.layer, 3                        ; pc 46
setr dma.row_bytes, 108                  ; pc 47
load wbuf, 0x3ff80, 0xc0                 ; pc 48
setr sys.layer, 0                        ; pc 49
setr dma.row_bytes, 48                   ; pc 50
setr dma.row_bytes, 144                  ; pc 51
setr dma.dram_row, 4                     ; pc 52
setr dma.sram_row, 4                     ; pc 53
setr sys.layer, 1                        ; pc 54
setr pl.zp, -128                         ; pc 55
setr pl.count_pad, 0                     ; pc 56
setr cv.c, 4                             ; pc 57
setr cv.kh, 2                            ; pc 58
setr cv.sh, 2                            ; pc 59
setr cv.pad_top, 0                       ; pc 60
setr pl.h_out, 3                         ; pc 61
setr pl.pad_bottom, 0                    ; pc 62
setr cv.kw, 2                            ; pc 63
setr cv.sw, 2                            ; pc 64
setr cv.pad_left, 0                      ; pc 65
setr cv.w_out, 3                         ; pc 66
setr pl.pad_right, 0                     ; pc 67
pool max, 0x60000, 0x40000               ; pc 68
setr dma.row_bytes, 36                   ; pc 69
setr sys.layer, 2                        ; pc 70
setr cp.n0, 1                            ; pc 71
setr cp.n1, 1                            ; pc 72
setr cp.n2, 1                            ; pc 73
setr cp.n3, 36                           ; pc 74
setr cp.s0, 0                            ; pc 75
setr cp.s1, 0                            ; pc 76
setr cp.s2, 0                            ; pc 77
setr cp.s3, 1                            ; pc 78
setr cp.d0, 0                            ; pc 79
setr cp.d1, 0                            ; pc 80
setr cp.d2, 0                            ; pc 81
setr cp.d3, 1                            ; pc 82
setr cp.elem, 1                          ; pc 83
copy abuf, 0x20000, 0x60000              ; pc 84
setr cp.n2, 4                            ; pc 85
setr cp.n3, 9                            ; pc 86
setr cp.s2, 1                            ; pc 87
setr cp.s3, 4                            ; pc 88
setr cp.d0, 36                           ; pc 89
setr cp.d1, 36                           ; pc 90
setr cp.d2, 9                            ; pc 91
copy abuf, 0x40000, 0x20000              ; pc 92
setr dma.dram_row, 0                     ; pc 93
setr dma.sram_row, 36                    ; pc 94
setr dma.sram_plane, 36                  ; pc 95
setr sys.layer, 3                        ; pc 96
setr rq.zp, 70                           ; pc 97
setr mm.a_zp, -128                       ; pc 98
setr mm.a, 262144                        ; pc 99
setr mm.a_row, 36                        ; pc 100
setr mm.m, 1                             ; pc 101
setr mm.n, 3                             ; pc 102
setr mm.k, 36                            ; pc 103
setr mm.w_row, 36                        ; pc 104
setr mm.acc_row, 3                       ; pc 105
matmul gemm, 0, int8, 0, 0x20000, 0x3ff80 ; pc 106
setr dma.sram_row, 0                     ; pc 107
setr dma.sram_plane, 0                   ; pc 108
load pbuf, 0x8000, 0x140                 ; pc 109
setr rq.params, 32768                    ; pc 110
setr rq.m, 1                             ; pc 111
setr rq.n, 3                             ; pc 112
setr rq.src_row, 3                       ; pc 113
setr rq.dst_row, 3                       ; pc 114
requant acc, i8, half_even, 0x60000, 0x20000 ; pc 115
setr dma.row_bytes, 3                    ; pc 116
setr dma.dram_row, 3                     ; pc 117
setr dma.sram_row, 3                     ; pc 118
store abuf, 0x60000, 0x1080              ; pc 119
halt                                     ; pc 120
