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
matmul conv, 0, int8, 0, 0x0, 0x0        ; pc 50
setr rq.params, 0                        ; pc 51
setr rq.m, 36                            ; pc 52
setr rq.n, 2                             ; pc 53
setr rq.src_row, 2                       ; pc 54
setr rq.dst_row, 2                       ; pc 55
requant acc, i8, half_even, 0x40000, 0x0 ; pc 56
setr dma.row_bytes, 72                   ; pc 57
setr dma.dram_row, 2                     ; pc 58
setr dma.sram_row, 2                     ; pc 59
load abuf, 0x50000, 0x1000               ; pc 60
setr ea.b, 327680                        ; pc 61
setr ea.len, 72                          ; pc 62
eadd add, half_even, 0x40000, 0x40000    ; pc 63
store abuf, 0x40000, 0x10c0              ; pc 64
setr sys.layer, 1                        ; pc 65
setr pl.zp, -43                          ; pc 66
setr pl.count_pad, 0                     ; pc 67
setr pl.mult, 1074028940                 ; pc 68
setr pl.shift, 27                        ; pc 69
setr pl.out_zp, -128                     ; pc 70
load abuf, 0x20000, 0x10c0               ; pc 71
setr cv.kh, 6                            ; pc 72
setr cv.pad_top, 0                       ; pc 73
setr pl.h_out, 1                         ; pc 74
setr pl.pad_bottom, 0                    ; pc 75
setr cv.kw, 6                            ; pc 76
setr cv.pad_left, 0                      ; pc 77
setr cv.w_out, 1                         ; pc 78
setr pl.pad_right, 0                     ; pc 79
pool avg, 0x60000, 0x20000               ; pc 80
setr dma.row_bytes, 2                    ; pc 81
store abuf, 0x60000, 0x1140              ; pc 82
mode bf16                                ; pc 83
setr sys.layer, 2                        ; pc 84
setr v.scale, 999949326                  ; pc 85
setr v.zp, -128                          ; pc 86
setr dma.dram_row, 0                     ; pc 87
setr dma.sram_row, 0                     ; pc 88
load abuf, 0x0, 0x1140                   ; pc 89
setr v.len, 2                            ; pc 90
cvt i8_bf16, 0x0, 0x0                    ; pc 91
setr cp.n0, 1                            ; pc 92
setr cp.n1, 2                            ; pc 93
setr cp.n2, 1                            ; pc 94
setr cp.n3, 1                            ; pc 95
setr cp.s0, 0                            ; pc 96
setr cp.s1, 2                            ; pc 97
setr cp.s2, 4                            ; pc 98
setr cp.s3, 4                            ; pc 99
setr cp.d0, 0                            ; pc 100
setr cp.d1, 2                            ; pc 101
setr cp.d2, 2                            ; pc 102
setr cp.d3, 2                            ; pc 103
setr cp.elem, 2                          ; pc 104
copy vbuf, 0x20000, 0x0                  ; pc 105
setr dma.row_bytes, 4                    ; pc 106
setr dma.dram_row, 2                     ; pc 107
setr dma.sram_row, 2                     ; pc 108
store vbuf, 0x20000, 0x10c0              ; pc 109
setr sys.layer, 3                        ; pc 110
setr dma.dram_row, 4                     ; pc 111
setr dma.sram_row, 4                     ; pc 112
load vbuf, 0x0, 0x10c0                   ; pc 113
setr v.row, 2                            ; pc 114
vred max, 0x18, 0x0                      ; pc 115
setr v.b, 24                             ; pc 116
setr v.b_rep, 2                          ; pc 117
setr v.b_period, 1                       ; pc 118
vbin sub, vec, 0x0, 0x0                  ; pc 119
setr v.k0, 17074                         ; pc 120
vbin lt, k0, 0x4, 0x0                    ; pc 121
setr v.k1, 49850                         ; pc 122
vbin gt, k1, 0x8, 0x0                    ; pc 123
setr v.b, 8                              ; pc 124
setr v.b_rep, 1                          ; pc 125
setr v.b_period, 2                       ; pc 126
vbin and, vec, 0x4, 0x4                  ; pc 127
setr v.b, 0                              ; pc 128
setr v.k2, 0                             ; pc 129
vsel vec, k2, 0x4, 0x4                   ; pc 130
setr v.k3, 16313                         ; pc 131
vbin mul, k3, 0x8, 0x4                   ; pc 132
vun rint, 0, 0x8, 0x8                    ; pc 133
setr v.k4, 65520                         ; pc 134
vbin and, k4, 0xc, 0x8                   ; pc 135
setr v.b, 12                             ; pc 136
vbin sub, vec, 0x10, 0x8                 ; pc 137
setr v.k5, 48944                         ; pc 138
setr v.c, 4                              ; pc 139
setr v.c_rep, 1                          ; pc 140
setr v.c_period, 2                       ; pc 141
vfma k5, vec, 0x14, 0xc                  ; pc 142
setr v.c, 20                             ; pc 143
vfma k5, vec, 0x4, 0x10                  ; pc 144
setr v.k6, 48064                         ; pc 145
setr v.c, 4                              ; pc 146
vfma k6, vec, 0x14, 0xc                  ; pc 147
setr v.c, 20                             ; pc 148
vfma k6, vec, 0x4, 0x10                  ; pc 149
setr v.k7, 14688                         ; pc 150
setr v.c, 4                              ; pc 151
vfma k7, vec, 0xc, 0xc                   ; pc 152
setr v.c, 12                             ; pc 153
vfma k7, vec, 0x10, 0x10                 ; pc 154
setr v.k0, 46528                         ; pc 155
setr v.c, 16                             ; pc 156
vfma k0, vec, 0xc, 0x8                   ; pc 157
setr v.k1, 15659                         ; pc 158
setr v.k2, 15915                         ; pc 159
vfma k1, k2, 0x10, 0xc                   ; pc 160
setr v.k3, 16128                         ; pc 161
vfma vec, k3, 0x10, 0x10                 ; pc 162
setr v.k4, 16256                         ; pc 163
vfma vec, k4, 0x10, 0x10                 ; pc 164
vfma vec, k4, 0x10, 0x10                 ; pc 165
vun ftoi, 0, 0x8, 0x8                    ; pc 166
setr v.k5, 256                           ; pc 167
vbin iadd, k5, 0xc, 0x8                  ; pc 168
vun shr, 1, 0xc, 0xc                     ; pc 169
vun shl, 7, 0x4, 0xc                     ; pc 170
setr v.k6, 128                           ; pc 171
vbin isub, k6, 0x4, 0x4                  ; pc 172
vbin isub, vec, 0x8, 0x8                 ; pc 173
setr v.k7, 255                           ; pc 174
vbin iadd, k7, 0x8, 0x8                  ; pc 175
vun shl, 7, 0x8, 0x8                     ; pc 176
setr v.b, 4                              ; pc 177
vbin mul, vec, 0x10, 0x10                ; pc 178
setr v.b, 8                              ; pc 179
vbin mul, vec, 0x10, 0x10                ; pc 180
setr v.k0, 49850                         ; pc 181
vbin le, k0, 0x8, 0x0                    ; pc 182
setr v.k1, 0                             ; pc 183
vsel k1, vec, 0x8, 0x8                   ; pc 184
setr v.k2, 17074                         ; pc 185
vbin ge, k2, 0x10, 0x0                   ; pc 186
setr v.k3, 32640                         ; pc 187
setr v.c, 8                              ; pc 188
vsel k3, vec, 0x10, 0x10                 ; pc 189
setr v.b, 0                              ; pc 190
vbin eq, vec, 0x0, 0x0                   ; pc 191
setr v.b, 16                             ; pc 192
setr v.k4, 32704                         ; pc 193
vsel vec, k4, 0x0, 0x0                   ; pc 194
vred sum, 0x18, 0x0                      ; pc 195
setr v.len, 1                            ; pc 196
setr v.k5, 32767                         ; pc 197
vbin and, k5, 0x1a, 0x18                 ; pc 198
vbin gt, k1, 0x1c, 0x1a                  ; pc 199
vbin lt, k3, 0x1e, 0x1a                  ; pc 200
setr v.b, 30                             ; pc 201
setr v.b_period, 1                       ; pc 202
vbin and, vec, 0x1c, 0x1c                ; pc 203
setr v.b, 26                             ; pc 204
setr v.k6, 16256                         ; pc 205
vsel vec, k6, 0x1c, 0x1c                 ; pc 206
setr v.k7, 128                           ; pc 207
vbin lt, k7, 0x1e, 0x1c                  ; pc 208
setr v.k0, 24448                         ; pc 209
vbin mul, k0, 0x20, 0x1c                 ; pc 210
setr v.b, 32                             ; pc 211
setr v.c, 28                             ; pc 212
setr v.c_period, 1                       ; pc 213
vsel vec, vec, 0x22, 0x1e                ; pc 214
vun shr, 7, 0x1c, 0x22                   ; pc 215
setr v.k2, 64                            ; pc 216
vbin and, k2, 0x1e, 0x1e                 ; pc 217
setr v.b, 30                             ; pc 218
vbin isub, vec, 0x1c, 0x1c               ; pc 219
setr v.k4, 127                           ; pc 220
vbin and, k4, 0x22, 0x22                 ; pc 221
vbin or, k6, 0x22, 0x22                  ; pc 222
setr v.k5, 48881                         ; pc 223
setr v.k1, 16309                         ; pc 224
vfma k5, k1, 0x1e, 0x22                  ; pc 225
vbin mul, vec, 0x20, 0x22                ; pc 226
vbin rsub, k6, 0x20, 0x20                ; pc 227
setr v.b, 32                             ; pc 228
setr v.c, 30                             ; pc 229
vfma vec, vec, 0x1e, 0x1e                ; pc 230
setr v.b, 30                             ; pc 231
vbin mul, vec, 0x22, 0x22                ; pc 232
vbin rsub, k6, 0x22, 0x22                ; pc 233
setr v.b, 34                             ; pc 234
vfma vec, vec, 0x1e, 0x1e                ; pc 235
vbin irsub, k4, 0x1c, 0x1c               ; pc 236
setr v.k3, 256                           ; pc 237
vbin iadd, k3, 0x22, 0x1c                ; pc 238
vun shr, 1, 0x22, 0x22                   ; pc 239
vun shl, 7, 0x20, 0x22                   ; pc 240
vbin isub, k7, 0x20, 0x20                ; pc 241
vbin isub, vec, 0x1c, 0x1c               ; pc 242
setr v.k0, 255                           ; pc 243
vbin iadd, k0, 0x1c, 0x1c                ; pc 244
vun shl, 7, 0x1c, 0x1c                   ; pc 245
setr v.b, 32                             ; pc 246
vbin mul, vec, 0x1e, 0x1e                ; pc 247
setr v.b, 28                             ; pc 248
vbin mul, vec, 0x1e, 0x1e                ; pc 249
setr v.k2, 0                             ; pc 250
vbin eq, k2, 0x1c, 0x1a                  ; pc 251
setr v.k5, 32640                         ; pc 252
vsel k5, vec, 0x1c, 0x1c                 ; pc 253
vbin eq, k5, 0x1a, 0x1a                  ; pc 254
setr v.c, 28                             ; pc 255
vsel k2, vec, 0x1a, 0x1a                 ; pc 256
setr v.k1, 32768                         ; pc 257
vbin and, k1, 0x1c, 0x18                 ; pc 258
vbin or, vec, 0x1a, 0x1a                 ; pc 259
setr v.b, 24                             ; pc 260
vbin eq, vec, 0x18, 0x18                 ; pc 261
setr v.b, 26                             ; pc 262
setr v.k6, 32704                         ; pc 263
vsel vec, k6, 0x18, 0x18                 ; pc 264
setr v.len, 2                            ; pc 265
setr v.b, 24                             ; pc 266
setr v.b_rep, 2                          ; pc 267
vbin mul, vec, 0x0, 0x0                  ; pc 268
store vbuf, 0x0, 0x1080                  ; pc 269
halt                                     ; pc 270
