// llama.cpp's greedy decode speed on a GGUF file, measured the way llama-bench's text-generation
// test does (one token per llama_decode call, argmax of the logits, nothing else in the loop), so
// that the figure is llama.cpp's own and not a binding's per-token overhead.
//
//   cc -O2 -o llama_decode bench/llama_decode.c -ldl
//   ./llama_decode LIB_DIR MODEL.gguf START_TOKEN TOKENS ROUNDS THREADS
//
// LIB_DIR holds libllama and the ggml CPU backends (node-llama-cpp's prebuilt linux-x64 folder,
// which ships no llama-bench). Decodes TOKENS tokens from START_TOKEN, ROUNDS times with the
// memory cleared between rounds, and prints one JSON line:
// {"tokens_per_s": [per round], "text": greedy text of the last round}.
//
// No llama.h is available, so the few functions used are declared here. The parameter structs
// are only ever produced by llama.cpp (its *_default_params, llama_batch_get_one) and handed
// back unchanged: held in a buffer larger than any version's struct, they pass through by value
// correctly on x86-64 (both are larger than 16 bytes, so they travel in memory, and each is the
// last argument of the call that takes it).
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    _Alignas(16) unsigned char bytes[1024];
} opaque;

typedef void *(*load_model_fn)(const char *, opaque);
typedef void *(*init_ctx_fn)(void *, opaque);
typedef opaque (*defaults_fn)(void);
typedef opaque (*batch_one_fn)(int32_t *, int32_t);
typedef int32_t (*decode_fn)(void *, opaque);
typedef float *(*logits_fn)(void *, int32_t);
typedef void *(*vocab_fn)(const void *);
typedef int32_t (*n_tokens_fn)(const void *);
typedef void (*threads_fn)(void *, int32_t, int32_t);
typedef void *(*memory_fn)(void *);
typedef void (*memory_clear_fn)(void *, bool);
typedef int32_t (*piece_fn)(const void *, int32_t, char *, int32_t, int32_t, bool);
typedef void (*log_fn)(int, const char *, void *);

static void quiet(int level, const char *text, void *data) {
    (void)level, (void)text, (void)data;
}

static void *need(void *lib, const char *name) {
    void *f = dlsym(lib, name);
    if (!f) {
        fprintf(stderr, "llama_decode: %s not found in libllama: %s\n", name, dlerror());
        exit(2);
    }
    return f;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s LIB_DIR MODEL.gguf START_TOKEN TOKENS ROUNDS THREADS\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int32_t start = atoi(argv[3]), tokens = atoi(argv[4]), rounds = atoi(argv[5]),
            threads = atoi(argv[6]);
    char path[4096];
    snprintf(path, sizeof path, "%s/libggml.v0.5.0.so", dir);
    void *ggml = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    snprintf(path, sizeof path, "%s/libllama.v0.5.0.so", dir);
    void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!ggml || !lib) {
        fprintf(stderr, "llama_decode: cannot load llama.cpp from %s: %s\n", dir, dlerror());
        return 2;
    }
    ((void (*)(log_fn, void *))need(lib, "llama_log_set"))(quiet, NULL);
    // The CPU backends are separate libraries picked for this CPU at run time.
    ((void (*)(const char *))need(ggml, "ggml_backend_load_all_from_path"))(dir);
    ((void (*)(void))need(lib, "llama_backend_init"))();

    void *model = ((load_model_fn)need(lib, "llama_model_load_from_file"))(
        argv[2], ((defaults_fn)need(lib, "llama_model_default_params"))());
    if (!model) {
        fprintf(stderr, "llama_decode: cannot load %s\n", argv[2]);
        return 1;
    }
    void *ctx = ((init_ctx_fn)need(lib, "llama_init_from_model"))(
        model, ((defaults_fn)need(lib, "llama_context_default_params"))());
    if (!ctx) {
        fprintf(stderr, "llama_decode: cannot create a context\n");
        return 1;
    }
    ((threads_fn)need(lib, "llama_set_n_threads"))(ctx, threads, threads);
    const void *vocab = ((vocab_fn)need(lib, "llama_model_get_vocab"))(model);
    int32_t n_vocab = ((n_tokens_fn)need(lib, "llama_vocab_n_tokens"))(vocab);
    batch_one_fn batch_one = (batch_one_fn)need(lib, "llama_batch_get_one");
    decode_fn decode = (decode_fn)need(lib, "llama_decode");
    logits_fn logits = (logits_fn)need(lib, "llama_get_logits_ith");
    void *memory = ((memory_fn)need(lib, "llama_get_memory"))(ctx);
    memory_clear_fn clear = (memory_clear_fn)need(lib, "llama_memory_clear");
    piece_fn piece = (piece_fn)need(lib, "llama_token_to_piece");

    int32_t *ids = malloc(sizeof(int32_t) * (size_t)tokens);
    printf("{\"tokens_per_s\": [");
    for (int r = 0; r < rounds; r++) {
        clear(memory, true);
        int32_t token = start;
        double t0 = now();
        for (int i = 0; i < tokens; i++) {
            if (decode(ctx, batch_one(&token, 1)) != 0) {
                fprintf(stderr, "llama_decode: decode failed at token %d\n", i);
                return 1;
            }
            const float *l = logits(ctx, -1);
            int32_t best = 0;
            for (int32_t v = 1; v < n_vocab; v++)
                if (l[v] > l[best]) best = v;
            ids[i] = token = best;
        }
        printf("%s%.1f", r ? ", " : "", tokens / (now() - t0));
    }
    printf("], \"text\": \"");
    for (int i = 0; i < tokens; i++) {
        char buf[256];
        int32_t n = piece(vocab, ids[i], buf, sizeof buf, 0, false);
        for (int32_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)buf[k];
            if (c == '"' || c == '\\')
                printf("\\%c", c);
            else if (c < 0x20)
                printf("\\u%04x", c);
            else
                putchar(c);
        }
    }
    printf("\"}\n");
    return 0;
}
