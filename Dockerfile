# One image runs the operator and the agent (README.md, "In a cluster"). Two build stages: the
# BPF objects and loader (bpf/Makefile, the same build CI runs), and the TypeScript bundled; the
# final stage holds only what runs. `docker build .` builds it; without a Docker engine or registry,
# test/image/build builds this same file with buildah (docs/image.md).
FROM debian:bookworm AS bpf
RUN apt-get update && apt-get install -y --no-install-recommends \
      clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev make gcc pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY bpf/ bpf/
COPY bench/ bench/
# vmlinux.h comes from a kernel's BTF; CO-RE relocates offsets on the node at load time.
ARG VMLINUX_BTF=/sys/kernel/btf/vmlinux
RUN make -C bpf VMLINUX_BTF=${VMLINUX_BTF}

FROM node:20-bookworm-slim AS ts
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ src/
# One file per entry point (esbuild, package.json "bundle"): the image needs no node_modules,
# and a pod starts by reading one file instead of some thousand.
RUN npm run bundle

# Node.js alone from its image: its npm, yarn and corepack (some 2,000 files) are not needed to run.
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libelf1 zlib1g \
    && rm -rf /var/lib/apt/lists/*
COPY --from=ts /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=ts /src/dist dist/
COPY --from=ts /src/package.json ./
COPY --from=bpf /src/bpf/.output/vhost-hist /usr/local/bin/vhost-hist
USER 65532:65532
ENTRYPOINT ["node"]
