/* SPDX-License-Identifier: Apache-2.0 */
/* oikosd: the region server (being assembled). */
#include "base/common.h"

int
main(void)
{
    return 0;
}
