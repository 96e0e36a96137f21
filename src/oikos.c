/* SPDX-License-Identifier: Apache-2.0 */
/* oikos: the command-line tool (being assembled). */
#include "base/common.h"

int
main(void)
{
    return 0;
}
