/* SPDX-License-Identifier: MIT */
/*
 * A program built as a user builds one: vio_public_dep only (include/ and
 * libvio, as `pkg-config --cflags --libs vio` or a Meson subproject's
 * dependency('vio') give), the umbrella header, the project's warnings.
 * It must compile without src/ on the include path, link against the
 * shared library's exported symbols, and read the version both ways.
 */
#include <stdio.h>
#include <string.h>

#include <vio/vio.h>

#if defined(__has_include)
#if __has_include(<util/log.h>) || __has_include(<ring/vq_internal.h>)
#error "the public dependency puts src/ on the include path"
#endif
#endif

int main(void)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", VIO_VERSION_MAJOR,
		 VIO_VERSION_MINOR, VIO_VERSION_PATCH);
	if (strcmp(VIO_VERSION_STRING, want) != 0) {
		fprintf(stderr, "FAIL: VIO_VERSION_STRING %s, parts say %s\n",
			VIO_VERSION_STRING, want);
		return 1;
	}
	if (strcmp(vio_version(), VIO_VERSION_STRING) != 0) {
		fprintf(stderr, "FAIL: vio_version() %s, header %s\n",
			vio_version(), VIO_VERSION_STRING);
		return 1;
	}
	if (vio_version_number() != VIO_VERSION_NUMBER ||
	    VIO_VERSION_NUMBER != VIO_VERSION_ENCODE(VIO_VERSION_MAJOR,
						     VIO_VERSION_MINOR,
						     VIO_VERSION_PATCH)) {
		fprintf(stderr, "FAIL: vio_version_number() %#x, header %#x\n",
			vio_version_number(), VIO_VERSION_NUMBER);
		return 1;
	}
	printf("vio %s (%#x)\n", vio_version(), vio_version_number());
	return 0;
}
