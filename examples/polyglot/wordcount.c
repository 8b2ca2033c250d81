/* wordcount: a plain C program, built for wasm32-wasi (WASI preview1) by
 * scripts/setup with Debian's clang and wasi-libc, run by sluice as a command
 * task: the module is adapted into a component when it is loaded.
 *
 * Reads text on stdin, prints {"lines": L, "words": W, "bytes": B, "label": "$LABEL"}
 * on stdout. Exits 2 when stdin is empty (so a failing command can be seen). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    long lines = 0, words = 0, bytes = 0;
    int in_word = 0, c;
    while ((c = getchar()) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        if (isspace(c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    const char *label = getenv("LABEL");
    if (bytes == 0) {
        fprintf(stderr, "wordcount: nothing on stdin\n");
        return 2;
    }
    fprintf(stderr, "wordcount: counted %ld bytes\n", bytes);
    printf("{\"lines\": %ld, \"words\": %ld, \"bytes\": %ld, \"label\": \"%s\"}\n", lines, words, bytes, label ? label : "");
    return 0;
}
