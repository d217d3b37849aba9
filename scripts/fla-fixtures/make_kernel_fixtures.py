"""Kernel fixtures for the generalized delta rules and the mLSTM, written from the reference recurrences (float64, token
by token).

For GDN-2, Comba and RWKV-7 this writes one safetensors file each with the inputs in the reference's own
parametrisation, fixed cotangents do and dht, and what the reference computes: the outputs o, the final state ht and
the gradient of sum(o * do) + sum(ht * dht) with respect to every input (d<name>). Mnemo's tests map the inputs onto its
generalized delta kernel (docs/mechanisms.md#the-generalized-delta-rule) and compare, so the C# tests need no Python.
The recurrences follow fla (fla-org/flash-linear-attention):

  GDN-2  (fla/ops/gdn2/naive.py)        S = exp(g) * S;  S += k (w*v - S^T (b*k))^T;  o = S^T q
  Comba  (fla/ops/comba/fused_recurrent) u = v - S^T p (S before the decay);  S = exp(g) S + beta k u^T;  o = S^T q
  RWKV-7 (fla/ops/rwkv7/fused_recurrent) S = exp(w) * S + b (a^T S) + k v^T (a^T S before the decay);  o = S^T r

with S [K, V] per head, no query scale (Mnemo's layers scale q themselves), and keys as given (no L2 norm inside).
The mLSTM follows NX-AI's mlstm_kernels (mlstm_kernels/torch/recurrent/native_step.py), its stabilised step with
eps = 1e-6 and the states C, n, m carried from given initial ones (its q scale DHQK^-0.5 applied to q beforehand):

The Mamba-3 SISO update follows state-spaces/mamba's reference step (tests/ops/triton/test_mamba3_siso.py,
mamba3_siso_step_ref) without its D skip and z gate (the layer's), with the state stored [K, V] as Mnemo's:

  Mamba-3  phi += pi tanh(angles) dt (mod 2 pi);  q~, k~ = rotate((C + C_bias), phi), rotate((B + B_bias), phi);
           lam = sigmoid(trap);  S = exp(adt) S + (1 - lam) dt exp(adt) k~_prev v_prev^T + lam dt k~ v^T;  o = S^T q~

Mamba-3 MIMO follows state-spaces/mamba's mamba3_MIMO_step_ref (tests/ops/tilelang/test_mamba3_mimo.py) with R = 3 ranks,
no D skip and no z gate (the layer's), its per-rank value up-projection mimo_v and output down-projection mimo_o, the
pairwise rotation it uses, and the state stored [K, V]:

  Mamba-3 MIMO  v_r = mimo_v[:, r] * v;  q~_r, k~_r = rotate(C_r + C_bias_r, phi), rotate(B_r + B_bias_r, phi)
                S = exp(adt) S + beta sum_r k~_prev,r v_prev,r^T + gamma sum_r k~_r v_r^T;  o = sum_r mimo_o[:, r] * (S^T q~_r)

Log-linear attention follows fla's naive_log_linear_attn (fla/ops/log_linear_attn/naive.py): no carried state,
levels L = ceil(log2 T) + 1, scales as drawn (fla's tests draw them from N(0, 1)):

  log-linear  o_t = sum_{s<=t} levels[t, bitlen(t xor s)] exp(sum_{s<r<=t} g_r) (q_t . k_s) v_s

Log-linear Gated DeltaNet follows the authors' recurrence (HanGuo97/log-linear-attention, hattention/recurrent.py,
hattention_recurrent with HStruct.GDELTA and the weak base-2 levels): one state per level, level l holding at most 2^l
tokens, full levels folded upward before each token, every level taking the token's transition, the token alone in
level 0; no carried state. The final state is the levels 1 ... L-1 after the fold the next token would do:

  log-linear GDN  S_l = exp(g) (I - beta k k^T) S_l (every l);  S_0 = beta k v^T;  o = sum_l levels[t, l] S_l^T q

MesaNet follows fla's chunked CG reference (fla/ops/mesa_net/naive.py, naive_mesa_net_CG): from carried H and G,
CG from x = 0 with its 1e-5 guards, 10 steps, T = 32 (a multiple of that reference's chunk) and V = K (as it assumes):

  MesaNet  H = exp(g) H + beta k k^T;  G = exp(g) G + beta k v^T;  o = G^T x,  x = CG((H + diag lamb), q)

  mLSTM  m' = max(logsigmoid(f) + m, i);  C = exp(logsigmoid(f) + m - m') C + exp(i - m') k v^T  (n likewise with k);
         o = C^T q / (max(|q . n|, exp(-m')) + eps)

Usage: /usr/bin/python3 scripts/fla-fixtures/make_kernel_fixtures.py tests/Mnemo.Tests/Fixtures/kernels
"""
import math
import os
import sys

import torch

from make_fixtures import write_safetensors

B, T, H, K, V = 2, 37, 2, 6, 7          # T: two chunks of 16 and a remainder


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def run(inputs, step):
    """Runs the recurrence step(S, t) -> (S, o_t) over T tokens from h0; returns o [B, T, H, V] and the final state."""
    s = inputs["h0"]
    outputs = []
    for t in range(T):
        s, o = step(s, t)
        outputs.append(o)
    return torch.stack(outputs, 1), s


def gdn2(x):
    q, k, v, g, b, w = (x[n] for n in ("q", "k", "v", "g", "b", "w"))

    def step(s, t):
        s = s * g[:, t].exp().unsqueeze(-1)                                     # decay per key channel
        erase = ((b[:, t] * k[:, t]).unsqueeze(-1) * s).sum(-2)                 # S^T (b * k)   [B, H, V]
        s = s + k[:, t].unsqueeze(-1) * (w[:, t] * v[:, t] - erase).unsqueeze(-2)
        return s, (q[:, t].unsqueeze(-1) * s).sum(-2)
    return run(x, step)


def comba(x):
    q, k, v, p, beta, g = (x[n] for n in ("q", "k", "v", "p", "beta", "g"))

    def step(s, t):
        u = v[:, t] - (p[:, t].unsqueeze(-1) * s).sum(-2)                       # read before the decay
        s = s * g[:, t].exp()[..., None, None] + beta[:, t][..., None, None] * k[:, t].unsqueeze(-1) * u.unsqueeze(-2)
        return s, (q[:, t].unsqueeze(-1) * s).sum(-2)
    return run(x, step)


def rwkv7(x):
    r, w, k, v, a, b = (x[n] for n in ("r", "w", "k", "v", "a", "b"))

    def step(s, t):
        read = (a[:, t].unsqueeze(-1) * s).sum(-2)                              # a^T S before the decay  [B, H, V]
        s = s * w[:, t].exp().unsqueeze(-1) + b[:, t].unsqueeze(-1) * read.unsqueeze(-2) \
            + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        return s, (r[:, t].unsqueeze(-1) * s).sum(-2)
    return run(x, step)


def mlstm(x):
    q, k, v, i, f = (x[n] for n in ("q", "k", "v", "i", "f"))
    c, n, m = x["c0"], x["n0"], x["m0"]
    outputs = []
    for t in range(T):
        log_f = torch.nn.functional.logsigmoid(f[:, t])                        # [B, H]
        m_new = torch.maximum(log_f + m, i[:, t])
        forget, write = (log_f + m - m_new).exp(), (i[:, t] - m_new).exp()
        c = forget[..., None, None] * c + write[..., None, None] * k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        n = forget[..., None] * n + write[..., None] * k[:, t]
        m = m_new
        numerator = (q[:, t].unsqueeze(-1) * c).sum(-2)                        # C^T q  [B, H, V]
        normaliser = (q[:, t] * n).sum(-1, keepdim=True)                        # [B, H, 1]
        outputs.append(numerator / (torch.maximum(normaliser.abs(), (-m).exp().unsqueeze(-1)) + 1e-6))
    return torch.stack(outputs, 1), (c, n, m)


def rotate(x, phi):
    """Rotates the channel pairs (2j, 2j+1), j < R, of x [..., N] by phi [..., R]; the rest pass."""
    r = phi.shape[-1]
    even, odd = x[..., 0:2 * r:2], x[..., 1:2 * r:2]
    rotated = torch.stack([even * phi.cos() - odd * phi.sin(), even * phi.sin() + odd * phi.cos()], -1).flatten(-2)
    return torch.cat([rotated, x[..., 2 * r:]], -1)


def mamba3(x):
    q, k, v, adt, dt, trap, angles = (x[n] for n in ("q", "k", "v", "adt", "dt", "trap", "angles"))
    s, k_prev, v_prev, phi = x["h0"], x["k0"], x["v0"], x["phi0"]
    theta, lam = torch.tanh(angles) * math.pi, torch.sigmoid(trap)
    outputs = []
    for t in range(T):
        phi = phi + theta[:, t] * dt[:, t].unsqueeze(-1)
        phi = phi - 2 * math.pi * torch.floor(phi / (2 * math.pi))
        qt, kt = rotate(q[:, t] + x["q_bias"], phi), rotate(k[:, t] + x["k_bias"], phi)
        alpha = adt[:, t].exp()
        beta, gamma = (1 - lam[:, t]) * dt[:, t] * alpha, lam[:, t] * dt[:, t]
        s = alpha[..., None, None] * s + beta[..., None, None] * k_prev.unsqueeze(-1) * v_prev.unsqueeze(-2) \
            + gamma[..., None, None] * kt.unsqueeze(-1) * v[:, t].unsqueeze(-2)
        outputs.append((qt.unsqueeze(-1) * s).sum(-2))
        k_prev, v_prev = kt, v[:, t]
    return torch.stack(outputs, 1), (s, k_prev, v_prev, phi)


def mamba3_mimo(x):
    q, k, v, adt, dt, trap, angles = (x[n] for n in ("q", "k", "v", "adt", "dt", "trap", "angles"))
    s, k_prev, v_prev, phi = x["h0"], x["k0"], x["v0"], x["phi0"]             # [B, H, K, V], [B, R, H, K|V], [B, H, A]
    theta, lam = torch.tanh(angles) * math.pi, torch.sigmoid(trap)
    values = v.unsqueeze(2) * x["mimo_v"].transpose(0, 1)                      # [B, T, R, H, V]
    q_bias, k_bias = x["q_bias"].transpose(0, 1), x["k_bias"].transpose(0, 1)  # [R, H, K]
    outputs = []
    for t in range(T):
        phi = phi + theta[:, t] * dt[:, t].unsqueeze(-1)
        phi = phi - 2 * math.pi * torch.floor(phi / (2 * math.pi))
        qt, kt = rotate(q[:, t] + q_bias, phi.unsqueeze(1)), rotate(k[:, t] + k_bias, phi.unsqueeze(1))
        alpha = adt[:, t].exp()
        beta, gamma = (1 - lam[:, t]) * dt[:, t] * alpha, lam[:, t] * dt[:, t]
        s = alpha[..., None, None] * s + beta[..., None, None] * torch.einsum("brhk,brhv->bhkv", k_prev, v_prev) \
            + gamma[..., None, None] * torch.einsum("brhk,brhv->bhkv", kt, values[:, t])
        reads = torch.einsum("brhk,bhkv->brhv", qt, s)
        outputs.append(torch.einsum("brhv,hrv->bhv", reads, x["mimo_o"]))
        k_prev, v_prev = kt, values[:, t]
    return torch.stack(outputs, 1), (s, k_prev, v_prev, phi)


def loglinear(x):
    q, k, v, g, levels = (x[n] for n in ("q", "k", "v", "g", "levels"))
    outputs = []
    for t in range(T):
        o = torch.zeros_like(v[:, t])
        for s in range(t + 1):
            weight = levels[:, t, :, (t ^ s).bit_length()] * g[:, s + 1:t + 1].sum(1).exp()   # [B, H]
            o = o + (weight * (q[:, t] * k[:, s]).sum(-1)).unsqueeze(-1) * v[:, s]
        outputs.append(o)
    return torch.stack(outputs, 1), ()


def loglinear_gdn(x):
    q, k, v, g, beta, levels = (x[n] for n in ("q", "k", "v", "g", "beta", "levels"))
    count = levels.shape[-1]
    states = [torch.zeros(B, H, K, V, dtype=torch.float64) for _ in range(count)]
    held = [0] * count

    def fold():
        for l in range(count - 1):
            if held[l] < 2 ** l:
                break
            states[l + 1], held[l + 1] = states[l + 1] + states[l], held[l + 1] + held[l]
            states[l], held[l] = torch.zeros_like(states[l]), 0

    eye = torch.eye(K, dtype=torch.float64)
    outputs = []
    for t in range(T):
        fold()
        kt, b = k[:, t], beta[:, t][..., None, None]
        transition = g[:, t].exp()[..., None, None] * (eye - b * kt.unsqueeze(-1) * kt.unsqueeze(-2))
        states = [transition @ s for s in states]
        states[0], held[0] = b * kt.unsqueeze(-1) * v[:, t].unsqueeze(-2), held[0] + 1
        read = sum(levels[:, t, :, l][..., None, None] * states[l] for l in range(count))
        outputs.append((q[:, t].unsqueeze(-1) * read).sum(-2))
    fold()
    return torch.stack(outputs, 1), torch.stack(states[1:], 2)


def mesa(x):
    q, k, v, g, beta, lamb = (x[n] for n in ("q", "k", "v", "g", "beta", "lamb"))
    h, gv = x["h0"], x["g0"]
    outputs = []
    for t in range(q.shape[1]):
        decay, b = g[:, t].exp()[..., None, None], beta[:, t][..., None, None]
        h = decay * h + b * k[:, t].unsqueeze(-1) * k[:, t].unsqueeze(-2)
        gv = decay * gv + b * k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        xs = torch.zeros_like(q[:, t])
        r = q[:, t]
        p = r
        delta = (r * r).sum(-1)
        for _ in range(10):
            ap = (p.unsqueeze(-1) * h).sum(-2) + lamb * p
            alpha = delta / ((p * ap).sum(-1) + 1e-5)
            xs = xs + alpha.unsqueeze(-1) * p
            r = r - alpha.unsqueeze(-1) * ap
            new = (r * r).sum(-1)
            p = r + (new / (delta + 1e-5)).unsqueeze(-1) * p
            delta = new
        outputs.append((xs.unsqueeze(-1) * gv).sum(-2))
    return torch.stack(outputs, 1), (h, gv)


def inputs(rule, gen):
    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64)
    x = {"h0": randn(B, H, K, V) * 0.5, "v": randn(B, T, H, V)}
    if rule == "gdn2":
        x.update(q=randn(B, T, H, K), k=unit(randn(B, T, H, K)), g=-(rand(B, T, H, K) * 0.99 + 0.01),
                 b=rand(B, T, H, K), w=rand(B, T, H, V))
    elif rule == "comba":
        x.update(q=randn(B, T, H, K), k=unit(randn(B, T, H, K)), p=unit(randn(B, T, H, K)), beta=rand(B, T, H),
                 g=-(rand(B, T, H) * 0.99 + 0.01))
    elif rule == "mamba3":
        x.update(q=randn(B, T, H, K), k=randn(B, T, H, K), adt=-(rand(B, T, H) * 0.99 + 0.01), dt=rand(B, T, H) + 0.1,
                 trap=randn(B, T, H) * 2, angles=randn(B, T, H, 2) * 2, q_bias=randn(H, K), k_bias=randn(H, K),
                 k0=randn(B, H, K), v0=randn(B, H, V), phi0=rand(B, H, 2) * 2 * math.pi)
    elif rule == "loglinear":
        del x["h0"]
        x.update(q=randn(B, T, H, K), k=randn(B, T, H, K) * K ** -0.5, g=-(rand(B, T, H) * 0.5 + 0.01),
                 levels=randn(B, T, H, math.ceil(math.log2(T)) + 1))
    elif rule == "mamba3_mimo":
        r = 3
        x.update(q=randn(B, T, r, H, K), k=randn(B, T, r, H, K), adt=-(rand(B, T, H) * 0.99 + 0.01), dt=rand(B, T, H) + 0.1,
                 trap=randn(B, T, H) * 2, angles=randn(B, T, H, 2) * 2, q_bias=randn(H, r, K), k_bias=randn(H, r, K),
                 mimo_v=randn(H, r, V) / r, mimo_o=randn(H, r, V) / r, k0=randn(B, r, H, K), v0=randn(B, r, H, V),
                 phi0=rand(B, H, 2) * 2 * math.pi)
    elif rule == "loglinear_gdn":
        del x["h0"]
        x.update(q=randn(B, T, H, K), k=unit(randn(B, T, H, K)), g=-(rand(B, T, H) * 0.5 + 0.01), beta=rand(B, T, H) * 2,
                 levels=randn(B, T, H, math.ceil(math.log2(T)) + 1))
    elif rule == "mesa":
        a = randn(B, H, K, K) * 0.5
        x.update(q=unit(randn(B, 32, H, K)), k=unit(randn(B, 32, H, K)), v=randn(B, 32, H, K), g=-(rand(B, 32, H) * 0.5 + 0.01),
                 beta=rand(B, 32, H), lamb=rand(H, K) + 0.25, h0=a @ a.transpose(-1, -2), g0=randn(B, H, K, K) * 0.5)
    elif rule == "mlstm":
        x.update(q=randn(B, T, H, K) * K ** -0.5, k=randn(B, T, H, K), i=randn(B, T, H) * 3, f=randn(B, T, H) * 2 + 2,
                 c0=x.pop("h0"), n0=randn(B, H, K) * 0.5, m0=randn(B, H))
    else:
        kk = unit(randn(B, T, H, K))
        x.update(r=randn(B, T, H, K), w=-0.6065306597126334 * torch.sigmoid(randn(B, T, H, K)), k=randn(B, T, H, K) * 0.5,
                 a=-kk, b=kk * rand(B, T, H, K))
    return x


def main(out):
    os.makedirs(out, exist_ok=True)
    for seed, (name, rule) in enumerate([("gdn2", gdn2), ("comba", comba), ("rwkv7", rwkv7), ("mlstm", mlstm),
                                               ("mamba3", mamba3), ("loglinear", loglinear),
                                               ("mesa", mesa), ("loglinear_gdn", loglinear_gdn),
                                               ("mamba3_mimo", mamba3_mimo)]):
        gen = torch.Generator().manual_seed(1000 + seed)
        x = {n: t.requires_grad_(True) for n, t in inputs(name, gen).items()}
        o, final = rule(x)
        # the final state: S for the delta rules; C, n and m for the mLSTM; S, the last key and value and phi for Mamba-3
        names = {"mamba3": ("ht", "kt", "vt", "phit"), "mamba3_mimo": ("ht", "kt", "vt", "phit"),
                 "mesa": ("ht", "gt")}.get(name, ("ht", "nt", "mt"))
        final = dict(zip(names, final if isinstance(final, tuple) else (final,)))
        do = torch.randn(o.shape, generator=gen, dtype=torch.float64)
        cotangents = {"d" + n: torch.randn(t.shape, generator=gen, dtype=torch.float64) for n, t in final.items()}
        ((o * do).sum() + sum((t * cotangents["d" + n]).sum() for n, t in final.items())).backward()
        tensors = {n: t.detach() for n, t in x.items()}
        tensors.update({"do": do, **cotangents, "o": o.detach(), **{n: t.detach() for n, t in final.items()}})
        tensors.update({"d" + n: t.grad for n, t in x.items()})
        write_safetensors(os.path.join(out, name + ".safetensors"), tensors)
        print(f"{name}: {len(tensors)} tensors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/Mnemo.Tests/Fixtures/kernels")
