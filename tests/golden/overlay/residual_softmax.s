setr sys.layer, 0                        ; pc 0
setr rq.src_zp, 0                        ; pc 1
setr rq.pre_shift, 0                     ; pc 2
setr rq.zp, -128                         ; pc 3
setr rq.qmin, -128                       ; pc 4
setr rq.qmax, 127                        ; pc 5
setr ea.a_zp, -128                       ; pc 6
setr ea.b_zp, 6                          ; pc 7
setr ea.a_mult, 1073741824               ; pc 8
setr ea.a_shift, 31                      ; pc 9
setr ea.b_mult, 2070164380               ; pc 10
setr ea.b_shift, 32                      ; pc 11
setr ea.pre_shift, 20                    ; pc 12
setr ea.out_mult, 1410307871             ; pc 13
setr ea.out_shift, 50                    ; pc 14
setr ea.zp, -43                          ; pc 15
setr ea.qmin, -128                       ; pc 16
setr ea.qmax, 127                        ; pc 17
setr mm.a_zp, 6                          ; pc 18
setr cv.w, 6                             ; pc 19
setr cv.c, 2                             ; pc 20
setr cv.kh, 3                            ; pc 21
setr cv.kw, 3                            ; pc 22
setr cv.sh, 1                            ; pc 23
setr cv.sw, 1                            ; pc 24
setr cv.dh, 1                            ; pc 25
setr cv.dw, 1                            ; pc 26
setr cv.pad_left, 1                      ; pc 27
setr cv.w_out, 6                         ; pc 28
setr mm.w_row, 18                        ; pc 29
setr dma.planes, 1                       ; pc 30
setr dma.rows, 1                         ; pc 31
setr dma.row_bytes, 36                   ; pc 32
setr dma.dram_row, 0                     ; pc 33
setr dma.sram_row, 0                     ; pc 34
setr dma.dram_plane, 0                   ; pc 35
setr dma.sram_plane, 0                   ; pc 36
load wbuf, 0x0, 0x0                      ; pc 37
setr dma.row_bytes, 72                   ; pc 38
load abuf, 0x0, 0x1000                   ; pc 39
setr dma.row_bytes, 24                   ; pc 40
load pbuf, 0x0, 0x40                     ; pc 41
setr mm.a, 0                             ; pc 42
setr cv.h, 6                             ; pc 43
setr cv.pad_top, 1                       ; pc 44
setr mm.m, 36                            ; pc 45
setr mm.acc_row, 2                       ; pc 46
setr mm.n, 2                             ; pc 47
setr mm.k, 18                            ; pc 48
setr cv.c0, 0                            ; pc 49
setr cv.cg, 2                            ; pc 50
setr cv.ng, 2                            ; pc 51
matmul gconv, 0, int8, 0, 0x0, 0x0       ; pc 52
setr rq.params, 0                        ; pc 53
setr rq.m, 36                            ; pc 54
setr rq.n, 2                             ; pc 55
setr rq.src_row, 2                       ; pc 56
setr rq.dst_row, 2                       ; pc 57
requant acc, i8, half_even, 0x40000, 0x0 ; pc 58
setr dma.row_bytes, 72                   ; pc 59
setr dma.dram_row, 2                     ; pc 60
setr dma.sram_row, 2                     ; pc 61
load abuf, 0x50000, 0x1000               ; pc 62
setr ea.b, 327680                        ; pc 63
setr ea.len, 72                          ; pc 64
eadd add, half_even, 0x40000, 0x40000    ; pc 65
setr sys.layer, 1                        ; pc 66
setr pl.zp, -43                          ; pc 67
setr pl.count_pad, 0                     ; pc 68
setr pl.mult, 1074028940                 ; pc 69
setr pl.shift, 27                        ; pc 70
setr pl.out_zp, -128                     ; pc 71
setr cv.kh, 6                            ; pc 72
setr cv.pad_top, 0                       ; pc 73
setr pl.h_out, 1                         ; pc 74
setr pl.pad_bottom, 0                    ; pc 75
setr cv.kw, 6                            ; pc 76
setr cv.pad_left, 0                      ; pc 77
setr cv.w_out, 1                         ; pc 78
setr pl.pad_right, 0                     ; pc 79
pool avg, 0x60000, 0x40000               ; pc 80
setr dma.row_bytes, 2                    ; pc 81
mode bf16                                ; pc 82
setr sys.layer, 2                        ; pc 83
setr v.scale, 999949326                  ; pc 84
setr v.zp, -128                          ; pc 85
setr v.len, 2                            ; pc 86
cvt i8_bf16, 0x0, 0x60000                ; pc 87
setr cp.n0, 1                            ; pc 88
setr cp.n1, 2                            ; pc 89
setr cp.n2, 1                            ; pc 90
setr cp.n3, 1                            ; pc 91
setr cp.s0, 0                            ; pc 92
setr cp.s1, 2                            ; pc 93
setr cp.s2, 4                            ; pc 94
setr cp.s3, 4                            ; pc 95
setr cp.d0, 0                            ; pc 96
setr cp.d1, 2                            ; pc 97
setr cp.d2, 2                            ; pc 98
setr cp.d3, 2                            ; pc 99
setr cp.elem, 2                          ; pc 100
copy vbuf, 0x20000, 0x0                  ; pc 101
setr dma.row_bytes, 4                    ; pc 102
setr sys.layer, 3                        ; pc 103
setr v.row, 2                            ; pc 104
vred max, 0x30018, 0x20000               ; pc 105
setr v.b, 196632                         ; pc 106
setr v.b_rep, 2                          ; pc 107
setr v.b_period, 1                       ; pc 108
vbin sub, vec, 0x30000, 0x20000          ; pc 109
setr v.k0, 49850                         ; pc 110
vbin max, k0, 0x30000, 0x30000           ; pc 111
setr v.k1, 16313                         ; pc 112
vbin mul, k1, 0x30004, 0x30000           ; pc 113
vun rint, 0, 0x30004, 0x30004            ; pc 114
setr v.k2, 65520                         ; pc 115
vbin and, k2, 0x30008, 0x30004           ; pc 116
vun ftoi, 0, 0x3000c, 0x30004            ; pc 117
setr v.b, 196616                         ; pc 118
setr v.b_rep, 1                          ; pc 119
setr v.b_period, 2                       ; pc 120
vbin sub, vec, 0x30010, 0x30004          ; pc 121
setr v.k3, 48944                         ; pc 122
setr v.c, 196608                         ; pc 123
setr v.c_rep, 1                          ; pc 124
setr v.c_period, 2                       ; pc 125
vfma k3, vec, 0x30014, 0x30008           ; pc 126
setr v.k4, 191                           ; pc 127
vbin iadd, k4, 0x30000, 0x3000c          ; pc 128
setr v.c, 196628                         ; pc 129
vfma k3, vec, 0x3000c, 0x30010           ; pc 130
vun shl, 7, 0x30014, 0x30000             ; pc 131
setr v.k5, 48064                         ; pc 132
setr v.c, 196620                         ; pc 133
vfma k5, vec, 0x30000, 0x30008           ; pc 134
setr v.c, 196608                         ; pc 135
vfma k5, vec, 0x3000c, 0x30010           ; pc 136
setr v.k6, 14688                         ; pc 137
setr v.c, 196620                         ; pc 138
vfma k6, vec, 0x30000, 0x30008           ; pc 139
setr v.c, 196608                         ; pc 140
vfma k6, vec, 0x30008, 0x30010           ; pc 141
setr v.k7, 46528                         ; pc 142
setr v.c, 196616                         ; pc 143
vfma k7, vec, 0x3000c, 0x30004           ; pc 144
setr v.k0, 7467                          ; pc 145
setr v.k1, 7723                          ; pc 146
vfma k0, k1, 0x30010, 0x3000c            ; pc 147
setr v.b, 196620                         ; pc 148
setr v.k2, 7936                          ; pc 149
vfma vec, k2, 0x30000, 0x30010           ; pc 150
setr v.k4, 8064                          ; pc 151
vfma vec, k4, 0x30004, 0x30000           ; pc 152
vfma vec, k4, 0x30008, 0x30004           ; pc 153
setr v.b, 196628                         ; pc 154
vbin mul, vec, 0x30010, 0x30008          ; pc 155
vred sum, 0x3001a, 0x30010               ; pc 156
setr v.len, 1                            ; pc 157
setr v.k3, 127                           ; pc 158
vbin and, k3, 0x3001c, 0x3001a           ; pc 159
setr v.k5, 32640                         ; pc 160
vbin and, k5, 0x3001e, 0x3001a           ; pc 161
setr v.b, 196634                         ; pc 162
setr v.b_period, 1                       ; pc 163
vbin eq, vec, 0x30020, 0x3001a           ; pc 164
setr v.k6, 49024                         ; pc 165
vbin or, k6, 0x30022, 0x3001c            ; pc 166
setr v.k7, 32512                         ; pc 167
vbin irsub, k7, 0x30024, 0x3001e         ; pc 168
setr v.k0, 16113                         ; pc 169
setr v.k1, 16309                         ; pc 170
vfma k0, k1, 0x30026, 0x30022            ; pc 171
setr v.b, 196644                         ; pc 172
setr v.k2, 32704                         ; pc 173
vsel vec, k2, 0x30028, 0x30020           ; pc 174
setr v.b, 196646                         ; pc 175
setr v.k4, 16256                         ; pc 176
vfma vec, k4, 0x3002a, 0x30022           ; pc 177
setr v.b, 196650                         ; pc 178
setr v.c, 196646                         ; pc 179
setr v.c_period, 1                       ; pc 180
vfma vec, vec, 0x3002c, 0x30026          ; pc 181
setr v.b, 196652                         ; pc 182
vfma vec, k4, 0x3002e, 0x30022           ; pc 183
setr v.b, 196654                         ; pc 184
setr v.c, 196652                         ; pc 185
vfma vec, vec, 0x30030, 0x3002c          ; pc 186
setr v.b, 196648                         ; pc 187
vbin mul, vec, 0x30032, 0x30030          ; pc 188
setr v.len, 2                            ; pc 189
setr v.b, 196658                         ; pc 190
setr v.b_rep, 2                          ; pc 191
vbin mul, vec, 0x30000, 0x30010          ; pc 192
setr dma.dram_row, 4                     ; pc 193
setr dma.sram_row, 4                     ; pc 194
store vbuf, 0x30000, 0x1080              ; pc 195
halt                                     ; pc 196
