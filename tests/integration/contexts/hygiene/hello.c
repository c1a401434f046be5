/* A tiny program for the integration tests: compiled with gcc -static -Os in a build stage. */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from static C\n");
    for (int i = 1; i < argc; i++) {
        printf("arg %d: %s\n", i, argv[i]);
    }
    return 0;
}
