/* SPDX-License-Identifier: Apache-2.0 */
/*
 * banned.h: functions that oikos code must not call, made compile errors.
 * Included last by common.h, after the system headers that declare them.
 * Use the bounded alternatives: snprintf, memcpy with a checked length,
 * the checked parsers of base/parse.h, gmtime_r.
 */
#ifndef OIKOS_BANNED_H
#define OIKOS_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(...) BANNED(strcpy)
#undef strcat
#define strcat(...) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(...) BANNED(strtok)
#undef atoi
#define atoi(...) BANNED(atoi)
#undef atol
#define atol(...) BANNED(atol)
#undef gmtime
#define gmtime(...) BANNED(gmtime)
#undef localtime
#define localtime(...) BANNED(localtime)

#endif
