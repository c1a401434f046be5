#!/bin/sh
echo "hello from a 755 script"
