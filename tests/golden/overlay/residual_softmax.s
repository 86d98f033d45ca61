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
setr cp.n0, 1                            ; pc 72
setr cp.n1, 1                            ; pc 73
setr cp.n2, 1                            ; pc 74
setr cp.n3, 72                           ; pc 75
setr cp.s0, 0                            ; pc 76
setr cp.s1, 0                            ; pc 77
setr cp.s2, 0                            ; pc 78
setr cp.s3, 1                            ; pc 79
setr cp.d0, 0                            ; pc 80
setr cp.d1, 0                            ; pc 81
setr cp.d2, 0                            ; pc 82
setr cp.d3, 1                            ; pc 83
setr cp.elem, 1                          ; pc 84
copy abuf, 0x20000, 0x40000              ; pc 85
setr cv.kh, 6                            ; pc 86
setr cv.pad_top, 0                       ; pc 87
setr pl.h_out, 1                         ; pc 88
setr pl.pad_bottom, 0                    ; pc 89
setr cv.kw, 6                            ; pc 90
setr cv.pad_left, 0                      ; pc 91
setr cv.w_out, 1                         ; pc 92
setr pl.pad_right, 0                     ; pc 93
pool avg, 0x60000, 0x20000               ; pc 94
setr dma.row_bytes, 2                    ; pc 95
mode bf16                                ; pc 96
setr sys.layer, 2                        ; pc 97
setr v.scale, 999949326                  ; pc 98
setr v.zp, -128                          ; pc 99
setr v.len, 2                            ; pc 100
cvt i8_bf16, 0x0, 0x60000                ; pc 101
setr cp.n1, 2                            ; pc 102
setr cp.n3, 1                            ; pc 103
setr cp.s1, 2                            ; pc 104
setr cp.s2, 4                            ; pc 105
setr cp.s3, 4                            ; pc 106
setr cp.d1, 2                            ; pc 107
setr cp.d2, 2                            ; pc 108
setr cp.d3, 2                            ; pc 109
setr cp.elem, 2                          ; pc 110
copy vbuf, 0x20000, 0x0                  ; pc 111
setr dma.row_bytes, 4                    ; pc 112
setr sys.layer, 3                        ; pc 113
setr cp.n1, 1                            ; pc 114
setr cp.n3, 4                            ; pc 115
setr cp.s1, 0                            ; pc 116
setr cp.s2, 0                            ; pc 117
setr cp.s3, 1                            ; pc 118
setr cp.d1, 0                            ; pc 119
setr cp.d2, 0                            ; pc 120
setr cp.d3, 1                            ; pc 121
setr cp.elem, 1                          ; pc 122
copy vbuf, 0x0, 0x20000                  ; pc 123
setr v.row, 2                            ; pc 124
vred max, 0x28, 0x0                      ; pc 125
setr v.b, 40                             ; pc 126
setr v.b_rep, 2                          ; pc 127
setr v.b_period, 1                       ; pc 128
vbin sub, vec, 0x0, 0x0                  ; pc 129
setr v.k0, 17074                         ; pc 130
vbin lt, k0, 0x4, 0x0                    ; pc 131
setr v.k1, 49850                         ; pc 132
vbin gt, k1, 0x8, 0x0                    ; pc 133
vbin le, k1, 0xc, 0x0                    ; pc 134
vbin ge, k0, 0x10, 0x0                   ; pc 135
setr v.b, 0                              ; pc 136
setr v.b_rep, 1                          ; pc 137
setr v.b_period, 2                       ; pc 138
vbin eq, vec, 0x14, 0x0                  ; pc 139
setr v.b, 8                              ; pc 140
vbin and, vec, 0x4, 0x4                  ; pc 141
setr v.b, 0                              ; pc 142
setr v.k2, 0                             ; pc 143
vsel vec, k2, 0x8, 0x4                   ; pc 144
setr v.k3, 16313                         ; pc 145
vbin mul, k3, 0x4, 0x8                   ; pc 146
vun rint, 0, 0x0, 0x4                    ; pc 147
setr v.k4, 65520                         ; pc 148
vbin and, k4, 0x4, 0x0                   ; pc 149
vun ftoi, 0, 0x18, 0x0                   ; pc 150
setr v.b, 4                              ; pc 151
vbin sub, vec, 0x1c, 0x0                 ; pc 152
setr v.k5, 48944                         ; pc 153
setr v.c, 8                              ; pc 154
setr v.c_rep, 1                          ; pc 155
setr v.c_period, 2                       ; pc 156
vfma k5, vec, 0x20, 0x4                  ; pc 157
setr v.k6, 256                           ; pc 158
vbin iadd, k6, 0x8, 0x18                 ; pc 159
setr v.c, 32                             ; pc 160
vfma k5, vec, 0x24, 0x1c                 ; pc 161
vun shr, 1, 0x20, 0x8                    ; pc 162
setr v.k7, 48064                         ; pc 163
setr v.c, 36                             ; pc 164
vfma k7, vec, 0x8, 0x4                   ; pc 165
vun shl, 7, 0x24, 0x20                   ; pc 166
setr v.b, 32                             ; pc 167
vbin isub, vec, 0x18, 0x18               ; pc 168
setr v.c, 8                              ; pc 169
vfma k7, vec, 0x20, 0x1c                 ; pc 170
setr v.k1, 128                           ; pc 171
vbin isub, k1, 0x8, 0x24                 ; pc 172
setr v.k0, 255                           ; pc 173
vbin iadd, k0, 0x24, 0x18                ; pc 174
setr v.k2, 14688                         ; pc 175
setr v.c, 32                             ; pc 176
vfma k2, vec, 0x18, 0x4                  ; pc 177
vun shl, 7, 0x4, 0x24                    ; pc 178
setr v.c, 24                             ; pc 179
vfma k2, vec, 0x20, 0x1c                 ; pc 180
setr v.k3, 46528                         ; pc 181
setr v.c, 32                             ; pc 182
vfma k3, vec, 0x24, 0x0                  ; pc 183
setr v.k4, 15659                         ; pc 184
setr v.k6, 15915                         ; pc 185
vfma k4, k6, 0x1c, 0x24                  ; pc 186
setr v.b, 36                             ; pc 187
setr v.k5, 16128                         ; pc 188
vfma vec, k5, 0x18, 0x1c                 ; pc 189
setr v.k7, 16256                         ; pc 190
vfma vec, k7, 0x0, 0x18                  ; pc 191
vfma vec, k7, 0x20, 0x0                  ; pc 192
setr v.b, 8                              ; pc 193
vbin mul, vec, 0x1c, 0x20                ; pc 194
setr v.b, 4                              ; pc 195
vbin mul, vec, 0x18, 0x1c                ; pc 196
setr v.k1, 0                             ; pc 197
setr v.c, 24                             ; pc 198
vsel k1, vec, 0x0, 0xc                   ; pc 199
setr v.k0, 32640                         ; pc 200
setr v.c, 0                              ; pc 201
vsel k0, vec, 0x24, 0x10                 ; pc 202
setr v.b, 36                             ; pc 203
setr v.k2, 32704                         ; pc 204
vsel vec, k2, 0x20, 0x14                 ; pc 205
vred sum, 0x28, 0x20                     ; pc 206
setr v.len, 1                            ; pc 207
setr v.k3, 32767                         ; pc 208
vbin and, k3, 0x2a, 0x28                 ; pc 209
setr v.k4, 32768                         ; pc 210
vbin and, k4, 0x2c, 0x28                 ; pc 211
setr v.b, 40                             ; pc 212
setr v.b_period, 1                       ; pc 213
vbin eq, vec, 0x28, 0x28                 ; pc 214
vbin gt, k1, 0x2e, 0x2a                  ; pc 215
vbin lt, k0, 0x30, 0x2a                  ; pc 216
vbin eq, k1, 0x32, 0x2a                  ; pc 217
vbin eq, k0, 0x34, 0x2a                  ; pc 218
setr v.b, 48                             ; pc 219
vbin and, vec, 0x2e, 0x2e                ; pc 220
setr v.b, 42                             ; pc 221
vsel vec, k7, 0x30, 0x2e                 ; pc 222
setr v.k6, 128                           ; pc 223
vbin lt, k6, 0x2e, 0x30                  ; pc 224
setr v.k5, 24448                         ; pc 225
vbin mul, k5, 0x2a, 0x30                 ; pc 226
setr v.k2, 64                            ; pc 227
vbin and, k2, 0x36, 0x2e                 ; pc 228
setr v.c, 48                             ; pc 229
setr v.c_period, 1                       ; pc 230
vsel vec, vec, 0x2e, 0x2e                ; pc 231
setr v.k3, 127                           ; pc 232
vbin and, k3, 0x2a, 0x2e                 ; pc 233
vun shr, 7, 0x30, 0x2e                   ; pc 234
vbin or, k7, 0x2e, 0x2a                  ; pc 235
setr v.b, 54                             ; pc 236
vbin isub, vec, 0x2a, 0x30               ; pc 237
setr v.k4, 48881                         ; pc 238
setr v.k1, 16309                         ; pc 239
vfma k4, k1, 0x30, 0x2e                  ; pc 240
vbin irsub, k3, 0x36, 0x2a               ; pc 241
setr v.b, 48                             ; pc 242
vbin mul, vec, 0x2a, 0x2e                ; pc 243
setr v.k0, 256                           ; pc 244
vbin iadd, k0, 0x38, 0x36                ; pc 245
vbin rsub, k7, 0x2a, 0x2a                ; pc 246
vun shr, 1, 0x38, 0x38                   ; pc 247
setr v.b, 42                             ; pc 248
vfma vec, vec, 0x30, 0x30                ; pc 249
vun shl, 7, 0x2a, 0x38                   ; pc 250
setr v.b, 56                             ; pc 251
vbin isub, vec, 0x36, 0x36               ; pc 252
setr v.b, 48                             ; pc 253
vbin mul, vec, 0x38, 0x2e                ; pc 254
vbin isub, k6, 0x2e, 0x2a                ; pc 255
setr v.k5, 255                           ; pc 256
vbin iadd, k5, 0x2a, 0x36                ; pc 257
vbin rsub, k7, 0x36, 0x38                ; pc 258
vun shl, 7, 0x38, 0x2a                   ; pc 259
setr v.b, 54                             ; pc 260
vfma vec, vec, 0x2a, 0x30                ; pc 261
setr v.b, 46                             ; pc 262
vbin mul, vec, 0x30, 0x2a                ; pc 263
setr v.b, 56                             ; pc 264
vbin mul, vec, 0x36, 0x30                ; pc 265
setr v.k2, 32640                         ; pc 266
setr v.c, 54                             ; pc 267
vsel k2, vec, 0x2a, 0x32                 ; pc 268
setr v.k4, 0                             ; pc 269
setr v.c, 42                             ; pc 270
vsel k4, vec, 0x2e, 0x34                 ; pc 271
setr v.b, 44                             ; pc 272
vbin or, vec, 0x30, 0x2e                 ; pc 273
setr v.b, 48                             ; pc 274
setr v.k1, 32704                         ; pc 275
vsel vec, k1, 0x38, 0x28                 ; pc 276
setr v.len, 2                            ; pc 277
setr v.b, 56                             ; pc 278
setr v.b_rep, 2                          ; pc 279
vbin mul, vec, 0x8, 0x20                 ; pc 280
setr dma.dram_row, 4                     ; pc 281
setr dma.sram_row, 4                     ; pc 282
store vbuf, 0x8, 0x1080                  ; pc 283
halt                                     ; pc 284
