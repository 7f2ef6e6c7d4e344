/* SPDX-License-Identifier: MIT */
/* The version of the running library (vio/version.h). */
#include <vio/version.h>

const char *vio_version(void)
{
	return VIO_VERSION_STRING;
}

unsigned vio_version_number(void)
{
	return VIO_VERSION_NUMBER;
}
