/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for running reqsync under Wine 8.
 *
 * Rust's standard library (1.78 and later) gets its random numbers from ProcessPrng in
 * bcryptprimitives.dll, which every supported Windows has and Wine 8 does not: without it the
 * exe exits with code 53 before main and prints nothing. This DLL, placed beside reqsync.exe
 * in a Wine prefix, answers ProcessPrng from RtlGenRandom (advapi32's SystemFunction036),
 * which Wine has. scripts/test-windows builds it; it is never shipped or installed.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
