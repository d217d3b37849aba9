#!/usr/bin/env python3
"""PyTorch peer of `mnemo bench train --mixers gated_delta_net`: one training step of Mnemo's 2-layer Gated DeltaNet on
MQAR (configs/sweeps/demo.json base: V 256, L 64, d_model 64, 2 layers, 2 heads, mlp_ratio 0, batch 64) in plain
PyTorch fp32, with the same parameters (76,040), data, loss and AdamW step, and the chunkwise kernel composed of
PyTorch operations (a triangular solve for L⁻¹). Paths in the comments are relative to Mnemo's src/Mnemo/.

Optional: nothing in Mnemo's build, tests or commands runs this file (docs/benchmarks.md#a-pytorch-peer). It needs
Debian's python3-torch and, for a BLAS that is not the reference one, libopenblas0-pthread. Give the BLAS one thread
(torch's own threads parallelise around it; two pools on two cores oversubscribe) and its AVX-512 kernels:
    OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX python3 gdn_train_step.py --threads 2 --steps 30 --warmup 20
"""
import argparse, math, os, statistics, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

# configs/sweeps/demo.json base + Layers/ModelConfig.cs, Layers/MatrixMemoryConfig.cs, Training/TrainingConfig.cs defaults
V, L, D, LAYERS, H, BATCH = 256, 64, 64, 2, 2, 64
DK = DV = D // H                          # KeyHeadDim = d_model·expand_k / heads (expand_k = expand_v = 1)
CONV, CHUNK, NORM_EPS, INIT_STD = 4, 64, 1e-5, 0.02   # conv_size, matrix.chunk_size, norm_eps, init_std
DT_MIN, DT_MAX = 1e-3, 0.1               # matrix.dt_min/dt_max (MambaGate.Initial)
SLICES = [(64, 4, 8000), (64, 8, 8000), (64, 16, 8000)]   # task.train: (seq_len, num_kv_pairs, num_examples)
LR, WD, BETAS, CLIP, SEED = 3e-3, 0.1, (0.9, 0.98), 1.0, 0  # lr, weight_decay, beta1/2, grad_clip, seed
POWER_A, IGNORE = 0.01, -100                                # MqarConfig.PowerA, TaskBatch.Ignore

# ---- MQAR data (Tasks/Mqar.cs, Zoology's semantics), vectorised over examples ----
def mqar(n, l, k, rng):
    keys = np.argsort(rng.random((n, V // 2 - 1)), 1)[:, :k] + 1            # k distinct keys from [1, V/2)
    vals = np.argsort(rng.random((n, V - V // 2)), 1)[:, :k] + V // 2       # k distinct values from [V/2, V)
    x = np.zeros((n, l), np.int64); y = np.full((n, l), IGNORE, np.int64)
    x[:, 0:2 * k:2], x[:, 1:2 * k:2] = keys, vals                            # context block k1 v1 k2 v2 ...
    space = (l - 2 * k) // 2
    logw = np.log(POWER_A * np.arange(1, space + 1) ** (POWER_A - 1))
    # k slots drawn one after another without replacement, p ∝ a·g^(a−1) (SamplePowerLawGaps): Gumbel top-k, same law
    gaps = np.argsort(-(logw - np.log(-np.log(rng.random((n, space))))), 1)[:, :k]
    at, rows = 2 * k + 2 * gaps, np.arange(n)[:, None]
    x[rows, at], y[rows, at] = keys, vals                                   # query key; its label is its value
    zero = x == 0                                                           # random_non_queries: fill with U[0, V)
    x[zero] = rng.integers(0, V, zero.sum())
    return x, y

class Schedule:  # Training/BatchSchedule.cs: per epoch, shuffle each slice's rows, cut batches, shuffle batch order
    def __init__(self, slices, seed):
        self.slices, self.seed, self.cache = slices, seed, (-1, None)
        self.per_epoch = sum(math.ceil(len(x) / BATCH) for x, _ in slices)
    def at(self, step):
        epoch = step // self.per_epoch
        if self.cache[0] != epoch:
            rng, batches = np.random.default_rng((self.seed, epoch)), []
            for s, (x, _) in enumerate(self.slices):
                order = rng.permutation(len(x))
                batches += [(s, order[i:i + BATCH]) for i in range(0, len(x), BATCH)]
            self.cache = (epoch, [batches[i] for i in rng.permutation(len(batches))])
        s, rows = self.cache[1][step % self.per_epoch]
        x, y = self.slices[s]
        return torch.from_numpy(x[rows]), torch.from_numpy(y[rows])          # MqarEvaluator.ToTensors

# ---- the chunkwise Gated DeltaNet kernel (Memory/Matrix/DeltaKernel.cs ComposedChunk, Chunks.cs, Decays.cs PerHead) ----
def chunk_gated_delta_rule(q, k, v, g, beta, chunk=CHUNK):
    """q, k [B,T,H,Dk], v [B,T,H,Dv], g (log-decay) and beta [B,T,H] → o [B,T,H,Dv], final state [B,H,Dk,Dv].
    S_t = (I − β_t k_t k_tᵀ) e^{g_t} S_{t−1} + β_t k_t v_tᵀ, o_t = S_tᵀ q_t."""
    b, t, h = q.shape[:3]
    c = max(1, min(chunk, t)); n = (t + c - 1) // c                        # MatrixKernels.Run clamps the chunk to T
    def split(x):                                                           # [B,T,H,D] → [B,H,N,C,D], zero-padded
        x = x.transpose(1, 2)
        return F.pad(x, (0, 0, 0, n * c - t)).reshape(b, h, n, c, x.shape[-1])
    Q, K, Vv = split(q), split(k), split(v)
    bt, gc = split(beta.unsqueeze(-1)), split(g.unsqueeze(-1)).squeeze(-1)  # [B,H,N,C,1], [B,H,N,C]
    ones = torch.ones(c, c, dtype=torch.bool)
    # Γ_ij = exp(Σ_{j<m≤i} g_m) for i ≥ j, from masked column sums (Chunks.DecayMatrix; no γ_i − γ_j cancellation)
    seg = gc.unsqueeze(-1).expand(*gc.shape, c).masked_fill(ones.triu(0), 0).cumsum(-2)
    gamma = seg.exp() * ones.tril().to(q.dtype)
    read = gc.cumsum(-1).exp().unsqueeze(-1)                                # e^{γ_i}          (Chunks.ScalarDecays)
    suffix = torch.cat([gc.flip(-1).cumsum(-1).flip(-1)[..., 1:], torch.zeros_like(gc[..., :1])], -1)
    write, carry = suffix.exp().unsqueeze(-1), gc.sum(-1).exp()[..., None, None]   # e^{γ_C − γ_j}, e^{γ_C}
    E, Vw = bt * K, bt * Vv                                                 # erase vectors β k, written values β v
    EK = (E @ K.transpose(-1, -2)) * gamma          # L = I + tril(EK, −1): the solver reads the strict lower part only
    Linv = torch.linalg.solve_triangular(EK, torch.eye(c, dtype=q.dtype), upper=False, left=True, unitriangular=True)
    U = Linv @ Vw                                                           # [B,H,N,C,Dv]
    zero_start = n == 1                                                     # one chunk from the zero state: no W, no scan
    W = None if zero_start else Linv @ (E * read)                           # L⁻¹ (β K ⊙ e^γ)
    s, before, xs = None, [], []
    Us, Ws, Kw = U.unbind(2), (None if W is None else W.unbind(2)), (K * write).transpose(-1, -2).unbind(2)
    for i in range(n):                                                      # inter-chunk scan: X = U − W S, S' = e^{γ_C} S + Kwᵀ X
        before.append(s)
        xs.append(Us[i] if s is None else Us[i] - Ws[i] @ s)
        s = Kw[i] @ xs[i] if s is None else carry[:, :, i] * s + Kw[i] @ xs[i]
    X = U if zero_start else torch.stack(xs, 2)
    O = ((Q @ K.transpose(-1, -2)) * gamma) @ X                             # intra-chunk (Q ⋆ K) X
    if any(x is not None for x in before):                                  # + (Q ⊙ e^γ) S_entering (Chunks.Entering)
        z = torch.zeros(b, h, q.shape[-1], v.shape[-1], dtype=q.dtype)
        O = O + (Q * read) @ torch.stack([z if x is None else x for x in before], 2)
    return O.reshape(b, h, n * c, -1)[:, :, :t].transpose(1, 2), s

def naive_gated_delta_rule(q, k, v, g, beta):  # per-token recurrence (Memory/Matrix/DeltaKernel.cs Step)
    s, out = torch.zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3], dtype=q.dtype), []
    for t in range(q.shape[1]):
        s = s * g[:, t].exp()[..., None, None]                              # decay
        r = (k[:, t].unsqueeze(-2) @ s).squeeze(-2)                         # kᵀ S
        s = s + k[:, t].unsqueeze(-1) * (beta[:, t].unsqueeze(-1) * (v[:, t] - r)).unsqueeze(-2)
        out.append((q[:, t].unsqueeze(-2) @ s).squeeze(-2))                # o_t = S_tᵀ q_t
    return torch.stack(out, 1), s

def kernel_inputs(b, t, dtype, grad=False):
    q, k = (F.normalize(torch.randn(b, t, H, DK, dtype=dtype), dim=-1) for _ in range(2))
    xs = [q * DK ** -0.5, k, torch.randn(b, t, H, DV, dtype=dtype), -torch.rand(b, t, H, dtype=dtype) * 0.5,
          torch.rand(b, t, H, dtype=dtype)]
    return [x.requires_grad_(grad) for x in xs]

def check_kernel():  # fp64; T 50, chunk 16: padding, scan and W all run; T 64, chunk 64: the model's single chunk
    torch.manual_seed(1)
    rel, errors = lambda a, b: ((a - b).norm() / b.norm()).item(), []
    for t, c in [(50, 16), (64, 64)]:
        xs = kernel_inputs(2, t, torch.float64, grad=True)
        (o1, s1), (o2, s2) = chunk_gated_delta_rule(*xs, chunk=c), naive_gated_delta_rule(*xs)
        w = torch.randn_like(o1)
        g1 = torch.autograd.grad((o1 * w).sum() + s1.sum(), xs); g2 = torch.autograd.grad((o2 * w).sum() + s2.sum(), xs)
        errors.append((rel(o1, o2), rel(s1, s2), max(rel(a, b) for a, b in zip(g1, g2))))
    return tuple(max(e) for e in zip(*errors))

# ---- the model (Models/LanguageModel.cs, Layers/*) ----
def rms(x, weight, gate=None):  # Layers/RMSNorm.cs Normalize · weight, GatedRMSNorm.cs: · silu(gate)
    y = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + NORM_EPS) * weight
    return y if gate is None else y * F.silu(gate)

def l2(x, scale):  # MemoryMixer.UnitNorm (fla's l2norm): scale · x / sqrt(‖x‖² + 1e−6)
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + 1e-6) * scale

class Conv(nn.Module):  # Layers/ShortConvolution.cs: depthwise causal, weight [C,1,K] ~ U(±1/√K), no bias, then SiLU
    def __init__(self, ch):
        super().__init__(); self.weight = nn.Parameter(torch.empty(ch, 1, CONV).uniform_(-CONV ** -0.5, CONV ** -0.5))

def short_conv(x, weight):  # ShortConvolution.Convolve: K shifted multiply-adds on [B,T,C], not conv1d
    t, taps = x.shape[1], weight.squeeze(1).t()                             # [K, C]
    p = F.pad(x, (0, 0, CONV - 1, 0))
    y = p[:, 0:t] * taps[0]
    for j in range(1, CONV):
        y = y.addcmul(p[:, j:j + t], taps[j])
    return F.silu(y)

class GatedDeltaNet(nn.Module):  # Layers/Matrix/GatedDeltaNet.cs, MatrixMemoryMixer.cs, MemoryMixer.cs (fla's names)
    def __init__(self):
        super().__init__()
        lin = lambda i, o: nn.Linear(i, o, bias=False)                      # Layers/Projection.cs (nn.Linear)
        self.q_proj, self.k_proj, self.v_proj, self.g_proj = lin(D, H * DK), lin(D, H * DK), lin(D, H * DV), lin(D, H * DV)
        self.q_conv1d, self.k_conv1d, self.v_conv1d = Conv(H * DK), Conv(H * DK), Conv(H * DV)
        self.o_norm = nn.Module(); self.o_norm.weight = nn.Parameter(torch.ones(DV))   # GatedRMSNorm over Dv, per head
        self.o_proj, self.a_proj, self.b_proj = lin(H * DV, D), lin(D, H), lin(D, H)
        a = torch.empty(H).uniform_(1, 16)                                  # Memory/Matrix/MambaGate.cs Initial
        dt = (torch.rand(H) * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN)).exp().clamp_min(min(1e-4, DT_MIN))
        self.A_log, self.dt_bias = nn.Parameter(a.log()), nn.Parameter(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x):
        b, t, _ = x.shape
        # MemoryMixer.Inputs: q, k, v, g projections as one product, the three convolutions as one over their channels
        w = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight, self.g_proj.weight], 0)
        proj = F.linear(x, w)
        taps = torch.cat([self.q_conv1d.weight, self.k_conv1d.weight, self.v_conv1d.weight], 0)
        q, k, v = short_conv(proj[..., :2 * H * DK + H * DV], taps).split([H * DK, H * DK, H * DV], -1)
        gate = proj[..., 2 * H * DK + H * DV:]
        q, k = l2(q.view(b, t, H, DK), DK ** -0.5), l2(k.view(b, t, H, DK), 1.0)   # UnitNormFeatures
        g = -self.A_log.exp() * F.softplus(self.a_proj(x) + self.dt_bias)  # MambaGate.LogDecay [B,T,H]
        beta = self.b_proj(x).sigmoid()                                     # MatrixMemoryMixer.Beta (no negative eigenvalues)
        o, _ = chunk_gated_delta_rule(q, k, v.view(b, t, H, DV), g, beta)
        y = rms(o, self.o_norm.weight, gate.view(b, t, H, DV))              # o_norm(o) · silu(g_proj x)
        return self.o_proj(y.reshape(b, t, H * DV))

class LanguageModel(nn.Module):  # Models/LanguageModel.cs: Backbone (embeddings, pre-norm blocks, norm), untied lm_head
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(V, D)                                # positions: rope, which only attention uses
        self.attn_norms = nn.ParameterList([nn.Parameter(torch.ones(D)) for _ in range(LAYERS)])
        self.attns = nn.ModuleList([GatedDeltaNet() for _ in range(LAYERS)])   # mlp_ratio 0: no MLP, no mlp_norm
        self.norm = nn.Parameter(torch.ones(D))
        self.lm_head = nn.Linear(D, V, bias=False)                          # tie_embeddings false
        with torch.no_grad():                                               # InitialiseWeights: N(0, 0.02) for every 2-D
            for p in self.parameters():
                if p.dim() == 2: p.normal_(0, INIT_STD)

    def scored_logits(self, tokens, mask):  # ScoredLogits: the head on the scored positions only
        h = self.embeddings(tokens)
        for norm, attn in zip(self.attn_norms, self.attns):
            h = h + attn(rms(h, norm))                                      # Block: x + mixer(attn_norm(x))
        return self.lm_head(rms(h, self.norm)[mask])

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--fresh-data", action="store_true", help="generate each batch inside the timed step (Mnemo draws "
                    "the whole data set before timing and its step only gathers the batch's rows into tensors)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print("kernel check vs per-token recurrence (fp64; T 50 chunk 16, T 64 chunk 64): max rel. error o %.1e, "
          "state %.1e, grads %.1e"
          % check_kernel())
    rng = np.random.default_rng(1)                                          # task.train_seed 1 (not .NET's Random stream)
    schedule = Schedule([mqar(n, l, k, rng) for l, k, n in SLICES], SEED)
    torch.manual_seed(SEED)                                                 # TorchRuntime.Seed(training.seed)
    model = LanguageModel()
    named = list(model.named_parameters())
    decay = [p for n, p in named if p.dim() == 2 and "embeddings" not in n]   # Trainer.DecayedParameters
    rest = [p for n, p in named if not (p.dim() == 2 and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS)                             # Trainer.CreateOptimizer; bench: constant lr
    params = [p for _, p in named]
    print(f"parameters {sum(p.numel() for p in params):,} (Mnemo: 76,040); torch {torch.__version__}, {a.threads} threads")
    m = torch.randn(1024, 1024); m @ m; t0 = time.perf_counter(); m @ m           # whichever libblas.so.3 Debian's
    print(f"fp32 matmul n=1024 at {2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9:.1f} GFLOP/s "   # alternatives give
          f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})")
    times, scored = [], 0
    for step in range(a.warmup + a.steps):                                  # TrainStepBenchmark.Measure + TrainingStep.Run
        t0 = time.perf_counter()
        if a.fresh_data:
            l, k, _ = SLICES[step % len(SLICES)]; x, y = map(torch.from_numpy, mqar(BATCH, l, k, rng))
        else:
            x, y = schedule.at(step)
        mask = y.ne(IGNORE)
        logits = model.scored_logits(x, mask)
        target = y[mask]
        loss = F.cross_entropy(logits, target)
        opt.zero_grad()                                                     # Mnemo zeroes just before backward
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        acc, loss_value = logits.argmax(-1).eq(target).float().mean().item(), loss.item()
        if step >= a.warmup: times.append((time.perf_counter() - t0) * 1e3); scored = int(mask.sum())
    med = statistics.median(times)
    print(f"step: median {med:.2f} ms, min {min(times):.2f}, max {max(times):.2f} over {a.steps} steps "
          f"({a.warmup} warm-up); {BATCH * L / med * 1e3:,.0f} tokens/s; last loss {loss_value:.4f}, scored {scored}")
    kt = []                                                                 # the kernel alone at the model's shape
    xs = kernel_inputs(BATCH, L, torch.float32, grad=True); dout = torch.randn(BATCH, L, H, DV)
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        o, _ = chunk_gated_delta_rule(*xs)
        torch.autograd.grad(o, xs, dout)
        if i >= a.warmup: kt.append((time.perf_counter() - t0) * 1e3)
    km = statistics.median(kt)
    print(f"kernel forward+backward [B {BATCH}, T {L}, H {H}, Dk {DK}, Dv {DV}], chunk {min(CHUNK, L)}: median "
          f"{km:.2f} ms per call, x{LAYERS} layers = {km * LAYERS:.2f} ms per step")

if __name__ == "__main__":
    main()
