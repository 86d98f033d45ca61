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
setr dma.row_bytes, 24                   ; pc 38
load pbuf, 0x0, 0x40                     ; pc 39
setr dma.row_bytes, 72                   ; pc 40
load abuf, 0x0, 0x1000                   ; pc 41
setr mm.a, 0                             ; pc 42
setr cv.h, 6                             ; pc 43
setr cv.pad_top, 1                       ; pc 44
setr mm.m, 36                            ; pc 45
setr mm.acc_row, 2                       ; pc 46
setr mm.n, 2                             ; pc 47
setr mm.k, 18                            ; pc 48
setr cv.c0, 0                            ; pc 49
matmul conv, 0, int8, 0, 0x0, 0x0        ; pc 50
setr rq.params, 0                        ; pc 51
setr rq.m, 36                            ; pc 52
setr rq.n, 2                             ; pc 53
setr rq.src_row, 2                       ; pc 54
setr rq.dst_row, 2                       ; pc 55
requant acc, i8, half_even, 0x40000, 0x0 ; pc 56
setr dma.dram_row, 2                     ; pc 57
setr dma.sram_row, 2                     ; pc 58
load abuf, 0x50000, 0x1000               ; pc 59
setr ea.b, 327680                        ; pc 60
setr ea.len, 72                          ; pc 61
eadd add, half_even, 0x40000, 0x40000    ; pc 62
store abuf, 0x40000, 0x10c0              ; pc 63
setr sys.layer, 1                        ; pc 64
setr cv.kh, 6                            ; pc 65
setr cv.kw, 6                            ; pc 66
setr cv.pad_left, 0                      ; pc 67
setr cv.w_out, 1                         ; pc 68
setr pl.zp, -43                          ; pc 69
setr pl.pad_right, 0                     ; pc 70
setr pl.count_pad, 0                     ; pc 71
setr pl.mult, 1074028940                 ; pc 72
setr pl.shift, 27                        ; pc 73
setr pl.out_zp, -128                     ; pc 74
load abuf, 0x0, 0x10c0                   ; pc 75
setr cv.pad_top, 0                       ; pc 76
setr pl.h_out, 1                         ; pc 77
setr pl.pad_bottom, 0                    ; pc 78
pool avg, 0x40000, 0x0                   ; pc 79
setr dma.row_bytes, 2                    ; pc 80
store abuf, 0x40000, 0x1140              ; pc 81
mode bf16                                ; pc 82
setr sys.layer, 2                        ; pc 83
setr v.scale, 999949326                  ; pc 84
setr v.zp, -128                          ; pc 85
setr dma.dram_row, 0                     ; pc 86
setr dma.sram_row, 0                     ; pc 87
load abuf, 0x0, 0x1140                   ; pc 88
setr v.len, 2                            ; pc 89
cvt i8_bf16, 0x0, 0x0                    ; pc 90
setr cp.n0, 1                            ; pc 91
setr cp.n1, 2                            ; pc 92
setr cp.n2, 1                            ; pc 93
setr cp.n3, 1                            ; pc 94
setr cp.s0, 0                            ; pc 95
setr cp.s1, 2                            ; pc 96
setr cp.s2, 4                            ; pc 97
setr cp.s3, 4                            ; pc 98
setr cp.d0, 0                            ; pc 99
setr cp.d1, 2                            ; pc 100
setr cp.d2, 2                            ; pc 101
setr cp.d3, 2                            ; pc 102
setr cp.elem, 2                          ; pc 103
copy vbuf, 0x20000, 0x0                  ; pc 104
setr dma.row_bytes, 4                    ; pc 105
setr dma.dram_row, 2                     ; pc 106
setr dma.sram_row, 2                     ; pc 107
store vbuf, 0x20000, 0x10c0              ; pc 108
setr sys.layer, 3                        ; pc 109
setr dma.dram_row, 4                     ; pc 110
setr dma.sram_row, 4                     ; pc 111
load vbuf, 0x0, 0x10c0                   ; pc 112
setr v.row, 2                            ; pc 113
vred max, 0x4, 0x0                       ; pc 114
setr v.b, 4                              ; pc 115
setr v.b_rep, 2                          ; pc 116
setr v.b_period, 1                       ; pc 117
vbin sub, vec, 0x0, 0x0                  ; pc 118
setr v.k0, 17074                         ; pc 119
vbin lt, k0, 0x4, 0x0                    ; pc 120
setr v.k1, 49850                         ; pc 121
vbin gt, k1, 0x8, 0x0                    ; pc 122
setr v.b, 8                              ; pc 123
setr v.b_rep, 1                          ; pc 124
setr v.b_period, 2                       ; pc 125
vbin and, vec, 0x4, 0x4                  ; pc 126
setr v.b, 0                              ; pc 127
setr v.k2, 0                             ; pc 128
vsel vec, k2, 0x4, 0x4                   ; pc 129
setr v.k3, 16313                         ; pc 130
vbin mul, k3, 0x8, 0x4                   ; pc 131
vun rint, 0, 0x8, 0x8                    ; pc 132
setr v.k4, 65520                         ; pc 133
vbin and, k4, 0xc, 0x8                   ; pc 134
setr v.b, 12                             ; pc 135
vbin sub, vec, 0x10, 0x8                 ; pc 136
setr v.k5, 48944                         ; pc 137
setr v.c, 4                              ; pc 138
setr v.c_rep, 1                          ; pc 139
setr v.c_period, 2                       ; pc 140
vfma k5, vec, 0x14, 0xc                  ; pc 141
setr v.c, 20                             ; pc 142
vfma k5, vec, 0x4, 0x10                  ; pc 143
setr v.k6, 48064                         ; pc 144
setr v.c, 4                              ; pc 145
vfma k6, vec, 0x14, 0xc                  ; pc 146
setr v.c, 20                             ; pc 147
vfma k6, vec, 0x4, 0x10                  ; pc 148
setr v.k7, 14688                         ; pc 149
setr v.c, 4                              ; pc 150
vfma k7, vec, 0xc, 0xc                   ; pc 151
setr v.c, 12                             ; pc 152
vfma k7, vec, 0x10, 0x10                 ; pc 153
setr v.k0, 46528                         ; pc 154
setr v.c, 16                             ; pc 155
vfma k0, vec, 0xc, 0x8                   ; pc 156
setr v.k1, 15659                         ; pc 157
setr v.k2, 15915                         ; pc 158
vfma k1, k2, 0x10, 0xc                   ; pc 159
setr v.k3, 16128                         ; pc 160
vfma vec, k3, 0x10, 0x10                 ; pc 161
setr v.k4, 16256                         ; pc 162
vfma vec, k4, 0x10, 0x10                 ; pc 163
vfma vec, k4, 0x10, 0x10                 ; pc 164
vun ftoi, 0, 0x8, 0x8                    ; pc 165
setr v.k5, 256                           ; pc 166
vbin iadd, k5, 0xc, 0x8                  ; pc 167
vun shr, 1, 0xc, 0xc                     ; pc 168
vun shl, 7, 0x4, 0xc                     ; pc 169
setr v.k6, 128                           ; pc 170
vbin isub, k6, 0x4, 0x4                  ; pc 171
vbin isub, vec, 0x8, 0x8                 ; pc 172
setr v.k7, 255                           ; pc 173
vbin iadd, k7, 0x8, 0x8                  ; pc 174
vun shl, 7, 0x8, 0x8                     ; pc 175
setr v.b, 4                              ; pc 176
vbin mul, vec, 0x10, 0x10                ; pc 177
setr v.b, 8                              ; pc 178
vbin mul, vec, 0x10, 0x10                ; pc 179
setr v.k0, 49850                         ; pc 180
vbin le, k0, 0x8, 0x0                    ; pc 181
setr v.k1, 0                             ; pc 182
vsel k1, vec, 0x8, 0x8                   ; pc 183
setr v.k2, 17074                         ; pc 184
vbin ge, k2, 0x10, 0x0                   ; pc 185
setr v.k3, 32640                         ; pc 186
setr v.c, 8                              ; pc 187
vsel k3, vec, 0x10, 0x10                 ; pc 188
setr v.b, 0                              ; pc 189
vbin eq, vec, 0x0, 0x0                   ; pc 190
setr v.b, 16                             ; pc 191
setr v.k4, 32704                         ; pc 192
vsel vec, k4, 0x0, 0x0                   ; pc 193
vred sum, 0x10, 0x0                      ; pc 194
setr v.len, 1                            ; pc 195
setr v.k5, 32767                         ; pc 196
vbin and, k5, 0x8, 0x10                  ; pc 197
vbin gt, k1, 0x4, 0x8                    ; pc 198
vbin lt, k3, 0xc, 0x8                    ; pc 199
setr v.b, 12                             ; pc 200
setr v.b_period, 1                       ; pc 201
vbin and, vec, 0x4, 0x4                  ; pc 202
setr v.b, 8                              ; pc 203
setr v.k6, 16256                         ; pc 204
vsel vec, k6, 0x4, 0x4                   ; pc 205
setr v.k7, 128                           ; pc 206
vbin lt, k7, 0xc, 0x4                    ; pc 207
setr v.k0, 24448                         ; pc 208
vbin mul, k0, 0x14, 0x4                  ; pc 209
setr v.b, 20                             ; pc 210
setr v.c, 4                              ; pc 211
setr v.c_period, 1                       ; pc 212
vsel vec, vec, 0x18, 0xc                 ; pc 213
vun shr, 7, 0x4, 0x18                    ; pc 214
setr v.k2, 64                            ; pc 215
vbin and, k2, 0xc, 0xc                   ; pc 216
setr v.b, 12                             ; pc 217
vbin isub, vec, 0x4, 0x4                 ; pc 218
setr v.k4, 127                           ; pc 219
vbin and, k4, 0x18, 0x18                 ; pc 220
vbin or, k6, 0x18, 0x18                  ; pc 221
setr v.k5, 48881                         ; pc 222
setr v.k1, 16309                         ; pc 223
vfma k5, k1, 0xc, 0x18                   ; pc 224
vbin mul, vec, 0x14, 0x18                ; pc 225
vbin rsub, k6, 0x14, 0x14                ; pc 226
setr v.b, 20                             ; pc 227
setr v.c, 12                             ; pc 228
vfma vec, vec, 0xc, 0xc                  ; pc 229
setr v.b, 12                             ; pc 230
vbin mul, vec, 0x18, 0x18                ; pc 231
vbin rsub, k6, 0x18, 0x18                ; pc 232
setr v.b, 24                             ; pc 233
vfma vec, vec, 0xc, 0xc                  ; pc 234
vbin irsub, k4, 0x4, 0x4                 ; pc 235
setr v.k3, 256                           ; pc 236
vbin iadd, k3, 0x18, 0x4                 ; pc 237
vun shr, 1, 0x18, 0x18                   ; pc 238
vun shl, 7, 0x14, 0x18                   ; pc 239
vbin isub, k7, 0x14, 0x14                ; pc 240
vbin isub, vec, 0x4, 0x4                 ; pc 241
setr v.k0, 255                           ; pc 242
vbin iadd, k0, 0x4, 0x4                  ; pc 243
vun shl, 7, 0x4, 0x4                     ; pc 244
setr v.b, 20                             ; pc 245
vbin mul, vec, 0xc, 0xc                  ; pc 246
setr v.b, 4                              ; pc 247
vbin mul, vec, 0xc, 0xc                  ; pc 248
setr v.k2, 0                             ; pc 249
vbin eq, k2, 0x4, 0x8                    ; pc 250
setr v.k5, 32640                         ; pc 251
vsel k5, vec, 0x4, 0x4                   ; pc 252
vbin eq, k5, 0x8, 0x8                    ; pc 253
setr v.c, 4                              ; pc 254
vsel k2, vec, 0x8, 0x8                   ; pc 255
setr v.k1, 32768                         ; pc 256
vbin and, k1, 0x4, 0x10                  ; pc 257
vbin or, vec, 0x8, 0x8                   ; pc 258
setr v.b, 16                             ; pc 259
vbin eq, vec, 0x10, 0x10                 ; pc 260
setr v.b, 8                              ; pc 261
setr v.k6, 32704                         ; pc 262
vsel vec, k6, 0x10, 0x10                 ; pc 263
setr v.len, 2                            ; pc 264
setr v.b, 16                             ; pc 265
setr v.b_rep, 2                          ; pc 266
vbin mul, vec, 0x0, 0x0                  ; pc 267
store vbuf, 0x0, 0x1080                  ; pc 268
halt                                     ; pc 269
