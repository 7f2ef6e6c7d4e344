/* SPDX-License-Identifier: MIT */
/*
 * The RBD image string (rbd_spec.h): no librbd here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk/rbd_spec.h"

/* Cut s at its first unescaped sep: what follows, or NULL. */
static char *cut(char *s, char sep)
{
	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			continue;
		}
		if (*s == sep) {
			*s = '\0';
			return s + 1;
		}
	}
	return NULL;
}

static void unescape(char *s)
{
	char *w = s;
	for (; *s; s++) {
		if (*s == '\\' && s[1])
			s++;
		*w++ = *s;
	}
	*w = '\0';
}

/* rbd:POOL[/NS]/IMAGE[@SNAP][:KEY=VALUE]...  0 or -EINVAL (err set). */
int rbd_spec_parse(const char *image, struct rbd_spec *sp, char *err,
		   size_t errlen)
{
	memset(sp, 0, sizeof(*sp));
	sp->buf = strdup(image + strlen("rbd:"));
	if (!sp->buf)
		return -ENOMEM;
	char *rest = cut(sp->buf, ':');
	while (rest) {
		char *item = rest;
		rest = cut(item, ':');
		char *v = cut(item, '=');
		if (!v || !*item) {
			snprintf(err, errlen,
				 "%s: '%s': KEY=VALUE expected after ':'",
				 image, item);
			return -EINVAL;
		}
		unescape(item);
		unescape(v);
		if (strcmp(item, "conf") == 0) {
			sp->conf = v;
		} else if (strcmp(item, "id") == 0) {
			sp->id = v;
		} else if (strcmp(item, "keyring") == 0) {
			sp->keyring = v;
		} else if (sp->nopt == RBD_OPTS_MAX) {
			snprintf(err, errlen, "%s: more than %u options", image,
				 RBD_OPTS_MAX);
			return -EINVAL;
		} else {
			sp->key[sp->nopt] = item;
			sp->val[sp->nopt++] = v;
		}
	}
	sp->snap = cut(sp->buf, '@');
	char *second = cut(sp->buf, '/');
	char *third = second ? cut(second, '/') : NULL;
	sp->pool = sp->buf;
	sp->ns = third ? second : NULL;
	sp->image = third ? third : second;
	if (!sp->image || !*sp->pool || !*sp->image || (sp->ns && !*sp->ns) ||
	    (sp->snap && !*sp->snap) || strchr(sp->image, '/')) {
		snprintf(err, errlen,
			 "%s: expected rbd:POOL[/NAMESPACE]/IMAGE[@SNAP]"
			 "[:conf=FILE][:id=CLIENT][:keyring=FILE][:OPTION="
			 "VALUE]...",
			 image);
		return -EINVAL;
	}
	unescape(sp->pool);
	unescape(sp->image);
	if (sp->ns)
		unescape(sp->ns);
	if (sp->snap)
		unescape(sp->snap);
	return 0;
}
