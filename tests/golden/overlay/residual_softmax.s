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
setr v.row, 2                            ; pc 114
vred max, 0x30028, 0x20000               ; pc 115
setr v.b, 196648                         ; pc 116
setr v.b_rep, 2                          ; pc 117
setr v.b_period, 1                       ; pc 118
vbin sub, vec, 0x30000, 0x20000          ; pc 119
setr v.k0, 17074                         ; pc 120
vbin lt, k0, 0x30004, 0x30000            ; pc 121
setr v.k1, 49850                         ; pc 122
vbin gt, k1, 0x30008, 0x30000            ; pc 123
vbin le, k1, 0x3000c, 0x30000            ; pc 124
vbin ge, k0, 0x30010, 0x30000            ; pc 125
setr v.b, 196608                         ; pc 126
setr v.b_rep, 1                          ; pc 127
setr v.b_period, 2                       ; pc 128
vbin eq, vec, 0x30014, 0x30000           ; pc 129
setr v.b, 196616                         ; pc 130
vbin and, vec, 0x30004, 0x30004          ; pc 131
setr v.b, 196608                         ; pc 132
setr v.k2, 0                             ; pc 133
vsel vec, k2, 0x30008, 0x30004           ; pc 134
setr v.k3, 16313                         ; pc 135
vbin mul, k3, 0x30004, 0x30008           ; pc 136
vun rint, 0, 0x30000, 0x30004            ; pc 137
setr v.k4, 65520                         ; pc 138
vbin and, k4, 0x30004, 0x30000           ; pc 139
vun ftoi, 0, 0x30018, 0x30000            ; pc 140
setr v.b, 196612                         ; pc 141
vbin sub, vec, 0x3001c, 0x30000          ; pc 142
setr v.k5, 48944                         ; pc 143
setr v.c, 196616                         ; pc 144
setr v.c_rep, 1                          ; pc 145
setr v.c_period, 2                       ; pc 146
vfma k5, vec, 0x30020, 0x30004           ; pc 147
setr v.k6, 256                           ; pc 148
vbin iadd, k6, 0x30008, 0x30018          ; pc 149
setr v.c, 196640                         ; pc 150
vfma k5, vec, 0x30024, 0x3001c           ; pc 151
vun shr, 1, 0x30020, 0x30008             ; pc 152
setr v.k7, 48064                         ; pc 153
setr v.c, 196644                         ; pc 154
vfma k7, vec, 0x30008, 0x30004           ; pc 155
vun shl, 7, 0x30024, 0x30020             ; pc 156
setr v.b, 196640                         ; pc 157
vbin isub, vec, 0x30018, 0x30018         ; pc 158
setr v.c, 196616                         ; pc 159
vfma k7, vec, 0x30020, 0x3001c           ; pc 160
setr v.k1, 128                           ; pc 161
vbin isub, k1, 0x30008, 0x30024          ; pc 162
setr v.k0, 255                           ; pc 163
vbin iadd, k0, 0x30024, 0x30018          ; pc 164
setr v.k2, 14688                         ; pc 165
setr v.c, 196640                         ; pc 166
vfma k2, vec, 0x30018, 0x30004           ; pc 167
vun shl, 7, 0x30004, 0x30024             ; pc 168
setr v.c, 196632                         ; pc 169
vfma k2, vec, 0x30020, 0x3001c           ; pc 170
setr v.k3, 46528                         ; pc 171
setr v.c, 196640                         ; pc 172
vfma k3, vec, 0x30024, 0x30000           ; pc 173
setr v.k4, 15659                         ; pc 174
setr v.k6, 15915                         ; pc 175
vfma k4, k6, 0x3001c, 0x30024            ; pc 176
setr v.b, 196644                         ; pc 177
setr v.k5, 16128                         ; pc 178
vfma vec, k5, 0x30018, 0x3001c           ; pc 179
setr v.k7, 16256                         ; pc 180
vfma vec, k7, 0x30000, 0x30018           ; pc 181
vfma vec, k7, 0x30020, 0x30000           ; pc 182
setr v.b, 196616                         ; pc 183
vbin mul, vec, 0x3001c, 0x30020          ; pc 184
setr v.b, 196612                         ; pc 185
vbin mul, vec, 0x30018, 0x3001c          ; pc 186
setr v.k1, 0                             ; pc 187
setr v.c, 196632                         ; pc 188
vsel k1, vec, 0x30000, 0x3000c           ; pc 189
setr v.k0, 32640                         ; pc 190
setr v.c, 196608                         ; pc 191
vsel k0, vec, 0x30024, 0x30010           ; pc 192
setr v.b, 196644                         ; pc 193
setr v.k2, 32704                         ; pc 194
vsel vec, k2, 0x30020, 0x30014           ; pc 195
vred sum, 0x30028, 0x30020               ; pc 196
setr v.len, 1                            ; pc 197
setr v.k3, 32767                         ; pc 198
vbin and, k3, 0x3002a, 0x30028           ; pc 199
setr v.k4, 32768                         ; pc 200
vbin and, k4, 0x3002c, 0x30028           ; pc 201
setr v.b, 196648                         ; pc 202
setr v.b_period, 1                       ; pc 203
vbin eq, vec, 0x30028, 0x30028           ; pc 204
vbin gt, k1, 0x3002e, 0x3002a            ; pc 205
vbin lt, k0, 0x30030, 0x3002a            ; pc 206
vbin eq, k1, 0x30032, 0x3002a            ; pc 207
vbin eq, k0, 0x30034, 0x3002a            ; pc 208
setr v.b, 196656                         ; pc 209
vbin and, vec, 0x3002e, 0x3002e          ; pc 210
setr v.b, 196650                         ; pc 211
vsel vec, k7, 0x30030, 0x3002e           ; pc 212
setr v.k6, 128                           ; pc 213
vbin lt, k6, 0x3002e, 0x30030            ; pc 214
setr v.k5, 24448                         ; pc 215
vbin mul, k5, 0x3002a, 0x30030           ; pc 216
setr v.k2, 64                            ; pc 217
vbin and, k2, 0x30036, 0x3002e           ; pc 218
setr v.c, 196656                         ; pc 219
setr v.c_period, 1                       ; pc 220
vsel vec, vec, 0x3002e, 0x3002e          ; pc 221
setr v.k3, 127                           ; pc 222
vbin and, k3, 0x3002a, 0x3002e           ; pc 223
vun shr, 7, 0x30030, 0x3002e             ; pc 224
vbin or, k7, 0x3002e, 0x3002a            ; pc 225
setr v.b, 196662                         ; pc 226
vbin isub, vec, 0x3002a, 0x30030         ; pc 227
setr v.k4, 48881                         ; pc 228
setr v.k1, 16309                         ; pc 229
vfma k4, k1, 0x30030, 0x3002e            ; pc 230
vbin irsub, k3, 0x30036, 0x3002a         ; pc 231
setr v.b, 196656                         ; pc 232
vbin mul, vec, 0x3002a, 0x3002e          ; pc 233
setr v.k0, 256                           ; pc 234
vbin iadd, k0, 0x30038, 0x30036          ; pc 235
vbin rsub, k7, 0x3002a, 0x3002a          ; pc 236
vun shr, 1, 0x30038, 0x30038             ; pc 237
setr v.b, 196650                         ; pc 238
vfma vec, vec, 0x30030, 0x30030          ; pc 239
vun shl, 7, 0x3002a, 0x30038             ; pc 240
setr v.b, 196664                         ; pc 241
vbin isub, vec, 0x30036, 0x30036         ; pc 242
setr v.b, 196656                         ; pc 243
vbin mul, vec, 0x30038, 0x3002e          ; pc 244
vbin isub, k6, 0x3002e, 0x3002a          ; pc 245
setr v.k5, 255                           ; pc 246
vbin iadd, k5, 0x3002a, 0x30036          ; pc 247
vbin rsub, k7, 0x30036, 0x30038          ; pc 248
vun shl, 7, 0x30038, 0x3002a             ; pc 249
setr v.b, 196662                         ; pc 250
vfma vec, vec, 0x3002a, 0x30030          ; pc 251
setr v.b, 196654                         ; pc 252
vbin mul, vec, 0x30030, 0x3002a          ; pc 253
setr v.b, 196664                         ; pc 254
vbin mul, vec, 0x30036, 0x30030          ; pc 255
setr v.k2, 32640                         ; pc 256
setr v.c, 196662                         ; pc 257
vsel k2, vec, 0x3002a, 0x30032           ; pc 258
setr v.k4, 0                             ; pc 259
setr v.c, 196650                         ; pc 260
vsel k4, vec, 0x3002e, 0x30034           ; pc 261
setr v.b, 196652                         ; pc 262
vbin or, vec, 0x30030, 0x3002e           ; pc 263
setr v.b, 196656                         ; pc 264
setr v.k1, 32704                         ; pc 265
vsel vec, k1, 0x30038, 0x30028           ; pc 266
setr v.len, 2                            ; pc 267
setr v.b, 196664                         ; pc 268
setr v.b_rep, 2                          ; pc 269
vbin mul, vec, 0x30008, 0x30020          ; pc 270
setr dma.dram_row, 4                     ; pc 271
setr dma.sram_row, 4                     ; pc 272
store vbuf, 0x30008, 0x1080              ; pc 273
halt                                     ; pc 274
