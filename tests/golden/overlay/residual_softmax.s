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
setr cp.n3, 2                            ; pc 100
copy abuf, 0x0, 0x60000                  ; pc 101
setr v.len, 2                            ; pc 102
cvt i8_bf16, 0x0, 0x0                    ; pc 103
setr cp.n1, 2                            ; pc 104
setr cp.n3, 1                            ; pc 105
setr cp.s1, 2                            ; pc 106
setr cp.s2, 4                            ; pc 107
setr cp.s3, 4                            ; pc 108
setr cp.d1, 2                            ; pc 109
setr cp.d2, 2                            ; pc 110
setr cp.d3, 2                            ; pc 111
setr cp.elem, 2                          ; pc 112
copy vbuf, 0x20000, 0x0                  ; pc 113
setr dma.row_bytes, 4                    ; pc 114
store vbuf, 0x20000, 0x10c0              ; pc 115
setr sys.layer, 3                        ; pc 116
setr dma.dram_row, 4                     ; pc 117
setr dma.sram_row, 4                     ; pc 118
load vbuf, 0x0, 0x10c0                   ; pc 119
setr v.row, 2                            ; pc 120
vred max, 0x28, 0x0                      ; pc 121
setr v.b, 40                             ; pc 122
setr v.b_rep, 2                          ; pc 123
setr v.b_period, 1                       ; pc 124
vbin sub, vec, 0x0, 0x0                  ; pc 125
setr v.k0, 17074                         ; pc 126
vbin lt, k0, 0x4, 0x0                    ; pc 127
setr v.k1, 49850                         ; pc 128
vbin gt, k1, 0x8, 0x0                    ; pc 129
vbin le, k1, 0xc, 0x0                    ; pc 130
vbin ge, k0, 0x10, 0x0                   ; pc 131
setr v.b, 0                              ; pc 132
setr v.b_rep, 1                          ; pc 133
setr v.b_period, 2                       ; pc 134
vbin eq, vec, 0x14, 0x0                  ; pc 135
setr v.b, 8                              ; pc 136
vbin and, vec, 0x4, 0x4                  ; pc 137
setr v.b, 0                              ; pc 138
setr v.k2, 0                             ; pc 139
vsel vec, k2, 0x8, 0x4                   ; pc 140
setr v.k3, 16313                         ; pc 141
vbin mul, k3, 0x4, 0x8                   ; pc 142
vun rint, 0, 0x0, 0x4                    ; pc 143
setr v.k4, 65520                         ; pc 144
vbin and, k4, 0x4, 0x0                   ; pc 145
vun ftoi, 0, 0x18, 0x0                   ; pc 146
setr v.b, 4                              ; pc 147
vbin sub, vec, 0x1c, 0x0                 ; pc 148
setr v.k5, 48944                         ; pc 149
setr v.c, 8                              ; pc 150
setr v.c_rep, 1                          ; pc 151
setr v.c_period, 2                       ; pc 152
vfma k5, vec, 0x20, 0x4                  ; pc 153
setr v.k6, 256                           ; pc 154
vbin iadd, k6, 0x8, 0x18                 ; pc 155
setr v.c, 32                             ; pc 156
vfma k5, vec, 0x24, 0x1c                 ; pc 157
vun shr, 1, 0x20, 0x8                    ; pc 158
setr v.k7, 48064                         ; pc 159
setr v.c, 36                             ; pc 160
vfma k7, vec, 0x8, 0x4                   ; pc 161
vun shl, 7, 0x24, 0x20                   ; pc 162
setr v.b, 32                             ; pc 163
vbin isub, vec, 0x18, 0x18               ; pc 164
setr v.c, 8                              ; pc 165
vfma k7, vec, 0x20, 0x1c                 ; pc 166
setr v.k1, 128                           ; pc 167
vbin isub, k1, 0x8, 0x24                 ; pc 168
setr v.k0, 255                           ; pc 169
vbin iadd, k0, 0x24, 0x18                ; pc 170
setr v.k2, 14688                         ; pc 171
setr v.c, 32                             ; pc 172
vfma k2, vec, 0x18, 0x4                  ; pc 173
vun shl, 7, 0x4, 0x24                    ; pc 174
setr v.c, 24                             ; pc 175
vfma k2, vec, 0x20, 0x1c                 ; pc 176
setr v.k3, 46528                         ; pc 177
setr v.c, 32                             ; pc 178
vfma k3, vec, 0x24, 0x0                  ; pc 179
setr v.k4, 15659                         ; pc 180
setr v.k6, 15915                         ; pc 181
vfma k4, k6, 0x1c, 0x24                  ; pc 182
setr v.b, 36                             ; pc 183
setr v.k5, 16128                         ; pc 184
vfma vec, k5, 0x18, 0x1c                 ; pc 185
setr v.k7, 16256                         ; pc 186
vfma vec, k7, 0x0, 0x18                  ; pc 187
vfma vec, k7, 0x20, 0x0                  ; pc 188
setr v.b, 8                              ; pc 189
vbin mul, vec, 0x1c, 0x20                ; pc 190
setr v.b, 4                              ; pc 191
vbin mul, vec, 0x18, 0x1c                ; pc 192
setr v.k1, 0                             ; pc 193
setr v.c, 24                             ; pc 194
vsel k1, vec, 0x0, 0xc                   ; pc 195
setr v.k0, 32640                         ; pc 196
setr v.c, 0                              ; pc 197
vsel k0, vec, 0x24, 0x10                 ; pc 198
setr v.b, 36                             ; pc 199
setr v.k2, 32704                         ; pc 200
vsel vec, k2, 0x20, 0x14                 ; pc 201
vred sum, 0x28, 0x20                     ; pc 202
setr v.len, 1                            ; pc 203
setr v.k3, 32767                         ; pc 204
vbin and, k3, 0x2a, 0x28                 ; pc 205
setr v.k4, 32768                         ; pc 206
vbin and, k4, 0x2c, 0x28                 ; pc 207
setr v.b, 40                             ; pc 208
setr v.b_period, 1                       ; pc 209
vbin eq, vec, 0x28, 0x28                 ; pc 210
vbin gt, k1, 0x2e, 0x2a                  ; pc 211
vbin lt, k0, 0x30, 0x2a                  ; pc 212
vbin eq, k1, 0x32, 0x2a                  ; pc 213
vbin eq, k0, 0x34, 0x2a                  ; pc 214
setr v.b, 48                             ; pc 215
vbin and, vec, 0x2e, 0x2e                ; pc 216
setr v.b, 42                             ; pc 217
vsel vec, k7, 0x30, 0x2e                 ; pc 218
setr v.k6, 128                           ; pc 219
vbin lt, k6, 0x2e, 0x30                  ; pc 220
setr v.k5, 24448                         ; pc 221
vbin mul, k5, 0x2a, 0x30                 ; pc 222
setr v.k2, 64                            ; pc 223
vbin and, k2, 0x36, 0x2e                 ; pc 224
setr v.c, 48                             ; pc 225
setr v.c_period, 1                       ; pc 226
vsel vec, vec, 0x2e, 0x2e                ; pc 227
setr v.k3, 127                           ; pc 228
vbin and, k3, 0x2a, 0x2e                 ; pc 229
vun shr, 7, 0x30, 0x2e                   ; pc 230
vbin or, k7, 0x2e, 0x2a                  ; pc 231
setr v.b, 54                             ; pc 232
vbin isub, vec, 0x2a, 0x30               ; pc 233
setr v.k4, 48881                         ; pc 234
setr v.k1, 16309                         ; pc 235
vfma k4, k1, 0x30, 0x2e                  ; pc 236
vbin irsub, k3, 0x36, 0x2a               ; pc 237
setr v.b, 48                             ; pc 238
vbin mul, vec, 0x2a, 0x2e                ; pc 239
setr v.k0, 256                           ; pc 240
vbin iadd, k0, 0x38, 0x36                ; pc 241
vbin rsub, k7, 0x2a, 0x2a                ; pc 242
vun shr, 1, 0x38, 0x38                   ; pc 243
setr v.b, 42                             ; pc 244
vfma vec, vec, 0x30, 0x30                ; pc 245
vun shl, 7, 0x2a, 0x38                   ; pc 246
setr v.b, 56                             ; pc 247
vbin isub, vec, 0x36, 0x36               ; pc 248
setr v.b, 48                             ; pc 249
vbin mul, vec, 0x38, 0x2e                ; pc 250
vbin isub, k6, 0x2e, 0x2a                ; pc 251
setr v.k5, 255                           ; pc 252
vbin iadd, k5, 0x2a, 0x36                ; pc 253
vbin rsub, k7, 0x36, 0x38                ; pc 254
vun shl, 7, 0x38, 0x2a                   ; pc 255
setr v.b, 54                             ; pc 256
vfma vec, vec, 0x2a, 0x30                ; pc 257
setr v.b, 46                             ; pc 258
vbin mul, vec, 0x30, 0x2a                ; pc 259
setr v.b, 56                             ; pc 260
vbin mul, vec, 0x36, 0x30                ; pc 261
setr v.k2, 32640                         ; pc 262
setr v.c, 54                             ; pc 263
vsel k2, vec, 0x2a, 0x32                 ; pc 264
setr v.k4, 0                             ; pc 265
setr v.c, 42                             ; pc 266
vsel k4, vec, 0x2e, 0x34                 ; pc 267
setr v.b, 44                             ; pc 268
vbin or, vec, 0x30, 0x2e                 ; pc 269
setr v.b, 48                             ; pc 270
setr v.k1, 32704                         ; pc 271
vsel vec, k1, 0x38, 0x28                 ; pc 272
setr v.len, 2                            ; pc 273
setr v.b, 56                             ; pc 274
setr v.b_rep, 2                          ; pc 275
vbin mul, vec, 0x8, 0x20                 ; pc 276
store vbuf, 0x8, 0x1080                  ; pc 277
halt                                     ; pc 278
