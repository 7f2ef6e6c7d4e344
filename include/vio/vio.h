/* SPDX-License-Identifier: MIT */
/*
 * vio/vio.h - all of vio's public API in one include.
 *
 * Each header below can also be included on its own; this one is for a
 * program that would rather not pick.  Build against the installed
 * library with `pkg-config --cflags --libs vio`, or, from a Meson project
 * that has vio as a subproject, with dependency('vio'): either gives the
 * same headers and library.  tests/test_symbols.py checks that this file
 * names every installed header.
 */
#ifndef VIO_VIO_H
#define VIO_VIO_H

#include <vio/version.h>

#include <vio/error.h>
#include <vio/log.h>
#include <vio/types.h>

#include <vio/mem.h>
#include <vio/ring.h>

#include <vio/bus.h>
#include <vio/device.h>
#include <vio/driver.h>
#include <vio/transport.h>

#include <vio/inproc.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#include <vio/blk.h>
#include <vio/net.h>
#include <vio/rng.h>

#endif
