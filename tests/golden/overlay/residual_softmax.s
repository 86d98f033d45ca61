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
vred max, 0x18, 0x0                      ; pc 121
setr v.b, 24                             ; pc 122
setr v.b_rep, 2                          ; pc 123
setr v.b_period, 1                       ; pc 124
vbin sub, vec, 0x0, 0x0                  ; pc 125
setr v.k0, 17074                         ; pc 126
vbin lt, k0, 0x4, 0x0                    ; pc 127
setr v.k1, 49850                         ; pc 128
vbin gt, k1, 0x8, 0x0                    ; pc 129
setr v.b, 8                              ; pc 130
setr v.b_rep, 1                          ; pc 131
setr v.b_period, 2                       ; pc 132
vbin and, vec, 0x4, 0x4                  ; pc 133
setr v.b, 0                              ; pc 134
setr v.k2, 0                             ; pc 135
vsel vec, k2, 0x4, 0x4                   ; pc 136
setr v.k3, 16313                         ; pc 137
vbin mul, k3, 0x8, 0x4                   ; pc 138
vun rint, 0, 0x8, 0x8                    ; pc 139
setr v.k4, 65520                         ; pc 140
vbin and, k4, 0xc, 0x8                   ; pc 141
setr v.b, 12                             ; pc 142
vbin sub, vec, 0x10, 0x8                 ; pc 143
setr v.k5, 48944                         ; pc 144
setr v.c, 4                              ; pc 145
setr v.c_rep, 1                          ; pc 146
setr v.c_period, 2                       ; pc 147
vfma k5, vec, 0x14, 0xc                  ; pc 148
setr v.c, 20                             ; pc 149
vfma k5, vec, 0x4, 0x10                  ; pc 150
setr v.k6, 48064                         ; pc 151
setr v.c, 4                              ; pc 152
vfma k6, vec, 0x14, 0xc                  ; pc 153
setr v.c, 20                             ; pc 154
vfma k6, vec, 0x4, 0x10                  ; pc 155
setr v.k7, 14688                         ; pc 156
setr v.c, 4                              ; pc 157
vfma k7, vec, 0xc, 0xc                   ; pc 158
setr v.c, 12                             ; pc 159
vfma k7, vec, 0x10, 0x10                 ; pc 160
setr v.k0, 46528                         ; pc 161
setr v.c, 16                             ; pc 162
vfma k0, vec, 0xc, 0x8                   ; pc 163
setr v.k1, 15659                         ; pc 164
setr v.k2, 15915                         ; pc 165
vfma k1, k2, 0x10, 0xc                   ; pc 166
setr v.k3, 16128                         ; pc 167
vfma vec, k3, 0x10, 0x10                 ; pc 168
setr v.k4, 16256                         ; pc 169
vfma vec, k4, 0x10, 0x10                 ; pc 170
vfma vec, k4, 0x10, 0x10                 ; pc 171
vun ftoi, 0, 0x8, 0x8                    ; pc 172
setr v.k5, 256                           ; pc 173
vbin iadd, k5, 0xc, 0x8                  ; pc 174
vun shr, 1, 0xc, 0xc                     ; pc 175
vun shl, 7, 0x4, 0xc                     ; pc 176
setr v.k6, 128                           ; pc 177
vbin isub, k6, 0x4, 0x4                  ; pc 178
vbin isub, vec, 0x8, 0x8                 ; pc 179
setr v.k7, 255                           ; pc 180
vbin iadd, k7, 0x8, 0x8                  ; pc 181
vun shl, 7, 0x8, 0x8                     ; pc 182
setr v.b, 4                              ; pc 183
vbin mul, vec, 0x10, 0x10                ; pc 184
setr v.b, 8                              ; pc 185
vbin mul, vec, 0x10, 0x10                ; pc 186
setr v.k0, 49850                         ; pc 187
vbin le, k0, 0x8, 0x0                    ; pc 188
setr v.k1, 0                             ; pc 189
vsel k1, vec, 0x8, 0x8                   ; pc 190
setr v.k2, 17074                         ; pc 191
vbin ge, k2, 0x10, 0x0                   ; pc 192
setr v.k3, 32640                         ; pc 193
setr v.c, 8                              ; pc 194
vsel k3, vec, 0x10, 0x10                 ; pc 195
setr v.b, 0                              ; pc 196
vbin eq, vec, 0x0, 0x0                   ; pc 197
setr v.b, 16                             ; pc 198
setr v.k4, 32704                         ; pc 199
vsel vec, k4, 0x0, 0x0                   ; pc 200
vred sum, 0x18, 0x0                      ; pc 201
setr v.len, 1                            ; pc 202
setr v.k5, 32767                         ; pc 203
vbin and, k5, 0x1a, 0x18                 ; pc 204
vbin gt, k1, 0x1c, 0x1a                  ; pc 205
vbin lt, k3, 0x1e, 0x1a                  ; pc 206
setr v.b, 30                             ; pc 207
setr v.b_period, 1                       ; pc 208
vbin and, vec, 0x1c, 0x1c                ; pc 209
setr v.b, 26                             ; pc 210
setr v.k6, 16256                         ; pc 211
vsel vec, k6, 0x1c, 0x1c                 ; pc 212
setr v.k7, 128                           ; pc 213
vbin lt, k7, 0x1e, 0x1c                  ; pc 214
setr v.k0, 24448                         ; pc 215
vbin mul, k0, 0x20, 0x1c                 ; pc 216
setr v.b, 32                             ; pc 217
setr v.c, 28                             ; pc 218
setr v.c_period, 1                       ; pc 219
vsel vec, vec, 0x22, 0x1e                ; pc 220
vun shr, 7, 0x1c, 0x22                   ; pc 221
setr v.k2, 64                            ; pc 222
vbin and, k2, 0x1e, 0x1e                 ; pc 223
setr v.b, 30                             ; pc 224
vbin isub, vec, 0x1c, 0x1c               ; pc 225
setr v.k4, 127                           ; pc 226
vbin and, k4, 0x22, 0x22                 ; pc 227
vbin or, k6, 0x22, 0x22                  ; pc 228
setr v.k5, 48881                         ; pc 229
setr v.k1, 16309                         ; pc 230
vfma k5, k1, 0x1e, 0x22                  ; pc 231
vbin mul, vec, 0x20, 0x22                ; pc 232
vbin rsub, k6, 0x20, 0x20                ; pc 233
setr v.b, 32                             ; pc 234
setr v.c, 30                             ; pc 235
vfma vec, vec, 0x1e, 0x1e                ; pc 236
setr v.b, 30                             ; pc 237
vbin mul, vec, 0x22, 0x22                ; pc 238
vbin rsub, k6, 0x22, 0x22                ; pc 239
setr v.b, 34                             ; pc 240
vfma vec, vec, 0x1e, 0x1e                ; pc 241
vbin irsub, k4, 0x1c, 0x1c               ; pc 242
setr v.k3, 256                           ; pc 243
vbin iadd, k3, 0x22, 0x1c                ; pc 244
vun shr, 1, 0x22, 0x22                   ; pc 245
vun shl, 7, 0x20, 0x22                   ; pc 246
vbin isub, k7, 0x20, 0x20                ; pc 247
vbin isub, vec, 0x1c, 0x1c               ; pc 248
setr v.k0, 255                           ; pc 249
vbin iadd, k0, 0x1c, 0x1c                ; pc 250
vun shl, 7, 0x1c, 0x1c                   ; pc 251
setr v.b, 32                             ; pc 252
vbin mul, vec, 0x1e, 0x1e                ; pc 253
setr v.b, 28                             ; pc 254
vbin mul, vec, 0x1e, 0x1e                ; pc 255
setr v.k2, 0                             ; pc 256
vbin eq, k2, 0x1c, 0x1a                  ; pc 257
setr v.k5, 32640                         ; pc 258
vsel k5, vec, 0x1c, 0x1c                 ; pc 259
vbin eq, k5, 0x1a, 0x1a                  ; pc 260
setr v.c, 28                             ; pc 261
vsel k2, vec, 0x1a, 0x1a                 ; pc 262
setr v.k1, 32768                         ; pc 263
vbin and, k1, 0x1c, 0x18                 ; pc 264
vbin or, vec, 0x1a, 0x1a                 ; pc 265
setr v.b, 24                             ; pc 266
vbin eq, vec, 0x18, 0x18                 ; pc 267
setr v.b, 26                             ; pc 268
setr v.k6, 32704                         ; pc 269
vsel vec, k6, 0x18, 0x18                 ; pc 270
setr v.len, 2                            ; pc 271
setr v.b, 24                             ; pc 272
setr v.b_rep, 2                          ; pc 273
vbin mul, vec, 0x0, 0x0                  ; pc 274
store vbuf, 0x0, 0x1080                  ; pc 275
halt                                     ; pc 276
