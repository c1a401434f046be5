#!/bin/sh
# A handler that fails: busybox httpd turns "Status:" into the response's status line.
echo "Status: 500 Internal Server Error"
echo "Content-Type: text/plain"
echo ""
echo "database unavailable"
echo "retry later"
