#!/usr/bin/env python3
"""Writes the tiny fla / Hugging Face checkpoints that Mnemo's import tests read (docs/interop.md#the-fixtures).

Each fixture folder holds what fla's `save_pretrained` writes (config.json, model.safetensors or shards with
model.safetensors.index.json) and reference.safetensors: fixed input ids and the logits this file's own
implementation of the architecture computes for them in float64. That implementation is written from fla's
equations (a per-token loop, no chunking) and shares no code with Mnemo. Mnemo never runs Python: the fixtures are
committed, and this script is how they were made.

Run from the repository root, with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 scripts/fla-fixtures/make_fixtures.py tests/Mnemo.Tests/Fixtures/fla
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

T = 70                  # longer than Mnemo's chunk of 64, not a multiple of it
VOCAB = 256


# --- the architecture, from fla's equations ------------------------------------------------------------------------

def rms_norm(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def l2_norm(x):
    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + 1e-6)


def short_conv(x, weight):
    """Depthwise causal convolution then SiLU: y[t, c] = silu(sum_j w[c, 0, j] x[t - (W-1) + j, c])."""
    w = weight.shape[-1]
    padded = F.pad(x, (0, 0, w - 1, 0))                                   # [T + W - 1, C]
    y = sum(padded[j:j + x.shape[0]] * weight[:, 0, j] for j in range(w))
    return F.silu(y)


def output(o, x, p, cfg, gated, norm):
    """The read o [T, H, V] through the per-head RMSNorm (weight p[norm]), times silu(g_proj x) when gated, then o_proj."""
    o = rms_norm(o, p[norm], cfg["norm_eps"])
    if gated:
        o = o * F.silu((x @ p["g_proj.weight"].T).view(o.shape))
    return o.reshape(T, -1) @ p["o_proj.weight"].T


def delta_inputs(x, p, h, writes=None):
    """q [T, H, K], k [T, H, K], v [T, H, V] of the delta rules after the SiLU short convolutions, q and k L2-normalised
    and q scaled by K^-1/2; with writes = n, k and v are [T, n, H, ...] (fla lays a token's writes out as (n h d))."""
    q = short_conv(x @ p["q_proj.weight"].T, p["q_conv1d.weight"])
    k = short_conv(x @ p["k_proj.weight"].T, p["k_conv1d.weight"])
    v = short_conv(x @ p["v_proj.weight"].T, p["v_conv1d.weight"])
    shape = (T, h, -1) if writes is None else (T, writes, h, -1)
    q, k, v = q.view(T, h, -1), k.view(*shape), v.view(*shape)
    return l2_norm(q) * q.shape[-1] ** -0.5, l2_norm(k), v


def delta_mixer(x, p, cfg, gated):
    """One (Gated) DeltaNet layer on x [T, D]: S_t = a_t S_{t-1} + k_t (beta_t (v_t - a_t S_{t-1}^T k_t))^T, o_t = S_t^T q_t."""
    h = cfg["num_heads"]
    q, k, v = delta_inputs(x, p, h)
    dk = q.shape[-1]
    beta = torch.sigmoid(x @ p["b_proj.weight"].T)                         # [T, H]
    if cfg.get("allow_neg_eigval"):
        beta = beta * 2                                                    # beta in (0, 2)
    if gated:
        g = -torch.exp(p["A_log"]) * F.softplus(x @ p["a_proj.weight"].T + p["dt_bias"])
    else:
        g = torch.zeros_like(beta)
    state = torch.zeros(h, dk, v.shape[-1], dtype=x.dtype)                 # [H, K, V]
    out = []
    for t in range(T):
        state = state * torch.exp(g[t])[:, None, None]
        u = beta[t][:, None] * (v[t] - torch.einsum("hkv,hk->hv", state, k[t]))
        state = state + k[t][:, :, None] * u[:, None, :]
        out.append(torch.einsum("hkv,hk->hv", state, q[t]))
    o = torch.stack(out)                                                   # [T, H, V]
    return output(o, x, p, cfg, cfg["use_gate"], "o_norm.weight")


def deltaproduct_mixer(x, p, cfg):
    """fla's GatedDeltaProduct on x [T, D]: each token writes n keys and values (n = num_householder), one delta step
    each, S <- (I - beta_j k_j k_j^T) S + beta_j k_j v_j^T; the forget gate (if any) decays S before the first step, and
    o_t = S^T q_t is read after the last."""
    h, n = cfg["num_heads"], cfg["num_householder"]
    q, k, v = delta_inputs(x, p, h, n)                                     # k, v [T, n, H, D]: a token's writes
    dk = q.shape[-1]
    beta = torch.sigmoid(x @ p["b_proj.weight"].T).view(T, n, h) * (2 if cfg["allow_neg_eigval"] else 1)
    if cfg["use_forget_gate"]:
        g = -torch.exp(p["A_log"]) * F.softplus(x @ p["a_proj.weight"].T + p["dt_bias"])
    else:
        g = torch.zeros(T, h, dtype=x.dtype)
    state = torch.zeros(h, dk, v.shape[-1], dtype=x.dtype)
    out = []
    for t in range(T):
        state = state * torch.exp(g[t])[:, None, None]
        for j in range(n):
            u = beta[t, j][:, None] * (v[t, j] - torch.einsum("hkv,hk->hv", state, k[t, j]))
            state = state + k[t, j][:, :, None] * u[:, None, :]
        out.append(torch.einsum("hkv,hk->hv", state, q[t]))
    o = torch.stack(out)
    return output(o, x, p, cfg, cfg["use_output_gate"], "o_norm.weight")


def kda_mixer(x, p, cfg):
    """fla's KimiDeltaAttention on x [T, D]: S_t = (I - beta_t k_t k_t^T) Diag(exp g_t) S_{t-1} + beta_t k_t v_t^T with a
    log-decay per key channel g_t = -exp(A_log) * softplus(f_proj x_t + dt_bias), o_t = S_t^T q_t, then
    RMSNorm(o) * sigmoid(g_proj x) (both projections low-rank, g_proj's second with a bias)."""
    h = cfg["num_heads"]
    q, k, v = delta_inputs(x, p, h)
    dk = q.shape[-1]
    f = (x @ p["f_proj.0.weight"].T) @ p["f_proj.1.weight"].T + p["dt_bias"]
    g = (-torch.exp(p["A_log"])[:, None] * F.softplus(f.view(T, h, dk)))  # [T, H, K]
    beta = torch.sigmoid(x @ p["b_proj.weight"].T) * (2 if cfg.get("allow_neg_eigval") else 1)   # [T, H]
    state = torch.zeros(h, dk, v.shape[-1], dtype=x.dtype)
    out = []
    for t in range(T):
        state = state * torch.exp(g[t])[:, :, None]
        u = beta[t][:, None] * (v[t] - torch.einsum("hkv,hk->hv", state, k[t]))
        state = state + k[t][:, :, None] * u[:, None, :]
        out.append(torch.einsum("hkv,hk->hv", state, q[t]))
    o = torch.stack(out)
    gate = ((x @ p["g_proj.0.weight"].T) @ p["g_proj.1.weight"].T + p["g_proj.1.bias"]).view(T, h, -1)
    o = rms_norm(o, p["o_norm.weight"], cfg["norm_eps"]) * torch.sigmoid(gate)
    return o.reshape(T, -1) @ p["o_proj.weight"].T


def gla_mixer(x, p, cfg):
    """fla's GatedLinearAttention on x [T, D]: S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t K^-1/2, with
    g_t = logsigmoid(gk_proj x_t) / 16 per key channel (gk_proj low-rank: D -> 16 -> key_dim, the second with a bias)."""
    h = cfg["num_heads"]
    q, k, v = x @ p["q_proj.weight"].T, x @ p["k_proj.weight"].T, x @ p["v_proj.weight"].T
    if cfg["use_short_conv"]:
        q, k, v = short_conv(q, p["q_conv1d.weight"]), short_conv(k, p["k_conv1d.weight"]), short_conv(v, p["v_conv1d.weight"])
    q, k, v = q.view(T, h, -1), k.view(T, h, -1), v.view(T, h, -1)
    gk = F.logsigmoid((x @ p["gk_proj.0.weight"].T) @ p["gk_proj.1.weight"].T + p["gk_proj.1.bias"]).view(T, h, -1) / 16
    q = q * q.shape[-1] ** -0.5
    state = torch.zeros(h, q.shape[-1], v.shape[-1], dtype=x.dtype)
    out = []
    for t in range(T):
        state = state * torch.exp(gk[t])[:, :, None] + k[t][:, :, None] * v[t][:, None, :]
        out.append(torch.einsum("hkv,hk->hv", state, q[t]))
    o = torch.stack(out)
    gated = cfg["use_output_gate"]
    return output(o, x, p, cfg, gated, "g_norm_swish_gate.weight" if gated else "g_norm.weight")


def rotary(x):
    """Rotate-half RoPE (fla's / Llama's layout) on x [T, H, hd] at positions 0 … T-1, base 10000."""
    hd = x.shape[-1]
    inv_freq = 1.0 / 10000 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angles = torch.arange(x.shape[0], dtype=torch.float64)[:, None] * inv_freq       # [T, hd/2]
    cos, sin = torch.cat([angles.cos()] * 2, -1)[:, None, :], torch.cat([angles.sin()] * 2, -1)[:, None, :]
    rotated = torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1)
    return x * cos + rotated * sin


def attention_mixer(x, p, cfg):
    """fla's Attention layer on x [T, D]: causal softmax over rotary q, k (the last window_size tokens if set)."""
    h = cfg["attn"]["num_heads"]
    q = rotary((x @ p["q_proj.weight"].T).view(T, h, -1))
    k = rotary((x @ p["k_proj.weight"].T).view(T, h, -1))
    v = (x @ p["v_proj.weight"].T).view(T, h, -1)
    scores = torch.einsum("ihd,jhd->hij", q, k) * q.shape[-1] ** -0.5
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    visible = j <= i
    if cfg["attn"].get("window_size"):
        visible = visible & (j > i - cfg["attn"]["window_size"])
    weights = scores.masked_fill(~visible, float("-inf")).softmax(-1)
    return torch.einsum("hij,jhd->ihd", weights, v).reshape(T, -1) @ p["o_proj.weight"].T


def mamba2_mixer(x, p, cfg):
    """Mamba-2 (fla's / Hugging Face's Mamba2 layer, one group) on x [T, D]: in_proj gives [z, xBC, dt]; xBC passes
    the causal depthwise convolution with bias and SiLU; H_t = exp(dt_t A) H_{t-1} + dt_t x_t B_t^T per head (A < 0),
    y_t = H_t C_t + D x_t; then RMSNorm(y * silu(z)) (the gate before the norm) and out_proj."""
    inner = cfg["expand"] * cfg["hidden_size"]
    n, hd = cfg["state_size"], cfg["head_dim"]
    h = inner // hd
    z, xbc, dt = (x @ p["in_proj.weight"].T).split([inner, inner + 2 * n, h], -1)
    w = p["conv1d.weight"].shape[-1]
    padded = F.pad(xbc, (0, 0, w - 1, 0))
    xbc = F.silu(sum(padded[j:j + T] * p["conv1d.weight"][:, 0, j] for j in range(w)) + p["conv1d.bias"])
    xs, b, c = xbc.split([inner, n, n], -1)
    xs = xs.view(T, h, hd)
    dt = F.softplus(dt + p["dt_bias"])                                     # [T, H]
    a = -torch.exp(p["A_log"])
    state = torch.zeros(h, hd, n, dtype=x.dtype)                           # [H, P, N]
    out = []
    for t in range(T):
        state = state * torch.exp(dt[t] * a)[:, None, None] + (dt[t][:, None] * xs[t])[:, :, None] * b[t][None, None, :]
        out.append(state @ c[t] + p["D"][:, None] * xs[t])
    y = torch.stack(out).reshape(T, inner) * F.silu(z)
    return rms_norm(y, p["norm.weight"], mamba2_eps(cfg)) @ p["out_proj.weight"].T


def mamba2_eps(cfg):
    return cfg["norm_eps"] if "norm_eps" in cfg else cfg["layer_norm_epsilon"]      # fla's key, Hugging Face's key


def mamba2_logits(weights, cfg, ids):
    """Mamba2ForCausalLM: blocks x + mixer(norm(x)) with no MLP, then norm_f and lm_head (tied or not)."""
    x = weights["backbone.embeddings.weight"][ids]
    eps = mamba2_eps(cfg)
    for i in range(cfg["num_hidden_layers"]):
        pre = f"backbone.layers.{i}."
        layer = {k[len(pre) + 6:]: w for k, w in weights.items() if k.startswith(pre + "mixer.")}
        x = x + mamba2_mixer(rms_norm(x, weights[pre + "norm.weight"], eps), layer, cfg)
    x = rms_norm(x, weights["backbone.norm_f.weight"], eps)
    head = weights["backbone.embeddings.weight"] if cfg["tie_word_embeddings"] else weights["lm_head.weight"]
    return x @ head.T


def attention_layers(cfg):
    return set(cfg["attn"]["layers"]) if cfg.get("attn") else set()


def memory_mixer(cfg, gated):
    if cfg["model_type"] == "gla":
        return gla_mixer
    if cfg["model_type"] == "kda":
        return kda_mixer
    if cfg["model_type"] == "gated_deltaproduct":
        return deltaproduct_mixer
    return lambda y, p, c: delta_mixer(y, p, c, gated)


def logits(weights, cfg, ids, gated):
    if cfg["model_type"] == "mamba2":
        return mamba2_logits(weights, cfg, ids)
    x = weights["model.embeddings.weight"][ids]
    eps = cfg["norm_eps"]
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        layer = {k[len(pre) + 5:]: w for k, w in weights.items() if k.startswith(pre + "attn.")}
        mixer = attention_mixer if i in attention_layers(cfg) else memory_mixer(cfg, gated)
        x = x + mixer(rms_norm(x, weights[pre + "attn_norm.weight"], eps), layer, cfg)
        hmid = rms_norm(x, weights[pre + "mlp_norm.weight"], eps)
        mlp = F.silu(hmid @ weights[pre + "mlp.gate_proj.weight"].T) * (hmid @ weights[pre + "mlp.up_proj.weight"].T)
        x = x + mlp @ weights[pre + "mlp.down_proj.weight"].T
    x = rms_norm(x, weights["model.norm.weight"], eps)
    head = weights["model.embeddings.weight"] if cfg["tie_word_embeddings"] else weights["lm_head.weight"]
    return x @ head.T


# --- weights ---------------------------------------------------------------------------------------------------------

def make_weights(cfg, gated, gen, fla_init=False):
    """Random weights, larger than fla's initialisation so that every parameter visibly moves the logits; or, with
    fla_init, at fla's own initialisation scale (N(0, 0.02) weights, norms of ones), where q and k are small."""
    if cfg["model_type"] == "mamba2":
        return mamba2_weights(cfg, gen)
    d, h, n = cfg["hidden_size"], cfg["num_heads"], cfg["num_hidden_layers"]
    if cfg["model_type"] in ("gated_deltanet", "kda", "gated_deltaproduct"):
        key_dim = h * cfg["head_dim"]
        value_dim = h * int(cfg["head_dim"] * cfg["expand_v"])
    else:
        key_dim, value_dim = int(d * cfg["expand_k"]), int(d * cfg["expand_v"])
    head_v = value_dim // h
    inter = cfg["intermediate_size"]
    w = {}

    def normal(*shape, std):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * (0.02 if fla_init else std)

    def norm_weight(size):
        return torch.ones(size, dtype=torch.float64) if fla_init else 1 + normal(size, std=0.2)

    w["model.embeddings.weight"] = normal(VOCAB, d, std=1.0)
    for i in range(n):
        pre = f"model.layers.{i}."
        w[pre + "attn_norm.weight"] = norm_weight(d)
        a = pre + "attn."
        if i in attention_layers(cfg):
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                w[a + name + ".weight"] = normal(d, d, std=d ** -0.5)
        elif cfg["model_type"] == "gla":
            gla_weights(w, a, cfg, normal, norm_weight, d, key_dim, value_dim, head_v)
        elif cfg["model_type"] == "kda":
            kda_weights(w, a, cfg, normal, norm_weight, d, h, key_dim, value_dim, head_v, gen)
        elif cfg["model_type"] == "gated_deltaproduct":
            deltaproduct_weights(w, a, cfg, normal, norm_weight, d, h, key_dim, value_dim, head_v, gen)
        else:
            delta_weights(w, a, cfg, gated, normal, norm_weight, d, h, key_dim, value_dim, head_v, gen)
        w[pre + "mlp_norm.weight"] = norm_weight(d)
        w[pre + "mlp.gate_proj.weight"] = normal(inter, d, std=d ** -0.5)
        w[pre + "mlp.up_proj.weight"] = normal(inter, d, std=d ** -0.5)
        w[pre + "mlp.down_proj.weight"] = normal(d, inter, std=inter ** -0.5)
    w["model.norm.weight"] = norm_weight(d)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = normal(VOCAB, d, std=d ** -0.5)
    return w


def gla_weights(w, a, cfg, normal, norm_weight, d, key_dim, value_dim, head_v):
    """One GLA layer's parameters under the prefix a, named as fla names them."""
    w[a + "q_proj.weight"] = normal(key_dim, d, std=d ** -0.5)
    w[a + "k_proj.weight"] = normal(key_dim, d, std=d ** -0.5)
    w[a + "v_proj.weight"] = normal(value_dim, d, std=d ** -0.5)
    if cfg["use_output_gate"]:
        w[a + "g_proj.weight"] = normal(value_dim, d, std=d ** -0.5)
    if cfg["use_short_conv"]:
        for name, size in (("q_conv1d", key_dim), ("k_conv1d", key_dim), ("v_conv1d", value_dim)):
            w[a + name + ".weight"] = normal(size, 1, cfg["conv_size"], std=0.5)
    w[a + "gk_proj.0.weight"] = normal(16, d, std=d ** -0.5)
    w[a + "gk_proj.1.weight"] = normal(key_dim, 16, std=0.25)
    w[a + "gk_proj.1.bias"] = normal(key_dim, std=1.0) + 3                  # decays near 1, as trained GLAs have
    w[a + "o_proj.weight"] = normal(d, value_dim, std=value_dim ** -0.5)
    w[a + ("g_norm_swish_gate.weight" if cfg["use_output_gate"] else "g_norm.weight")] = norm_weight(head_v)


def deltaproduct_weights(w, a, cfg, normal, norm_weight, d, h, key_dim, value_dim, head_v, gen):
    """One GatedDeltaProduct layer's parameters under the prefix a: k, v, b and their convolutions n times wider."""
    n = cfg["num_householder"]
    w[a + "q_proj.weight"] = normal(key_dim, d, std=d ** -0.5)
    w[a + "k_proj.weight"] = normal(n * key_dim, d, std=d ** -0.5)
    w[a + "v_proj.weight"] = normal(n * value_dim, d, std=d ** -0.5)
    w[a + "b_proj.weight"] = normal(n * h, d, std=d ** -0.5)
    if cfg["use_forget_gate"]:
        w[a + "a_proj.weight"] = normal(h, d, std=d ** -0.5)
        w[a + "A_log"] = torch.log(torch.rand(h, generator=gen, dtype=torch.float64) * 15 + 1)
        dt = torch.exp(torch.rand(h, generator=gen, dtype=torch.float64) * (math.log(0.1) - math.log(0.001))
                       + math.log(0.001))
        w[a + "dt_bias"] = dt + torch.log(-torch.expm1(-dt))
    for name, size in (("q_conv1d", key_dim), ("k_conv1d", n * key_dim), ("v_conv1d", n * value_dim)):
        w[a + name + ".weight"] = normal(size, 1, cfg["conv_size"], std=0.5)
    if cfg["use_output_gate"]:
        w[a + "g_proj.weight"] = normal(value_dim, d, std=d ** -0.5)
    w[a + "o_norm.weight"] = norm_weight(head_v)
    w[a + "o_proj.weight"] = normal(d, value_dim, std=value_dim ** -0.5)


def kda_weights(w, a, cfg, normal, norm_weight, d, h, key_dim, value_dim, head_v, gen):
    """One KimiDeltaAttention layer's parameters under the prefix a, named as fla names them."""
    w[a + "q_proj.weight"] = normal(key_dim, d, std=d ** -0.5)
    w[a + "k_proj.weight"] = normal(key_dim, d, std=d ** -0.5)
    w[a + "v_proj.weight"] = normal(value_dim, d, std=d ** -0.5)
    for name, size in (("q_conv1d", key_dim), ("k_conv1d", key_dim), ("v_conv1d", value_dim)):
        w[a + name + ".weight"] = normal(size, 1, cfg["conv_size"], std=0.5)
    w[a + "f_proj.0.weight"] = normal(head_v, d, std=d ** -0.5)
    w[a + "f_proj.1.weight"] = normal(key_dim, head_v, std=head_v ** -0.5)
    w[a + "b_proj.weight"] = normal(h, d, std=d ** -0.5)
    w[a + "A_log"] = torch.log(torch.rand(h, generator=gen, dtype=torch.float64) * 15 + 1)
    dt = torch.exp(torch.rand(key_dim, generator=gen, dtype=torch.float64) * (math.log(0.1) - math.log(0.001))
                   + math.log(0.001))
    w[a + "dt_bias"] = dt + torch.log(-torch.expm1(-dt))
    w[a + "g_proj.0.weight"] = normal(head_v, d, std=d ** -0.5)
    w[a + "g_proj.1.weight"] = normal(value_dim, head_v, std=head_v ** -0.5)
    w[a + "g_proj.1.bias"] = normal(value_dim, std=1.0)
    w[a + "o_norm.weight"] = norm_weight(head_v)
    w[a + "o_proj.weight"] = normal(d, value_dim, std=value_dim ** -0.5)


def delta_weights(w, a, cfg, gated, normal, norm_weight, d, h, key_dim, value_dim, head_v, gen):
    """One (Gated) DeltaNet layer's parameters under the prefix a."""
    w[a + "q_proj.weight"] = normal(key_dim, d, std=d ** -0.5)
    w[a + "k_proj.weight"] = normal(key_dim, d, std=d ** -0.5)
    w[a + "v_proj.weight"] = normal(value_dim, d, std=d ** -0.5)
    w[a + "b_proj.weight"] = normal(h, d, std=d ** -0.5)
    if gated:
        w[a + "a_proj.weight"] = normal(h, d, std=d ** -0.5)
        w[a + "A_log"] = torch.log(torch.rand(h, generator=gen, dtype=torch.float64) * 15 + 1)
        dt = torch.exp(torch.rand(h, generator=gen, dtype=torch.float64) * (math.log(0.1) - math.log(0.001))
                       + math.log(0.001))
        w[a + "dt_bias"] = dt + torch.log(-torch.expm1(-dt))
    for name, size in (("q_conv1d", key_dim), ("k_conv1d", key_dim), ("v_conv1d", value_dim)):
        w[a + name + ".weight"] = normal(size, 1, cfg["conv_size"], std=0.5)
    if cfg["use_gate"]:
        w[a + "g_proj.weight"] = normal(value_dim, d, std=d ** -0.5)
    w[a + "o_norm.weight"] = norm_weight(head_v)
    w[a + "o_proj.weight"] = normal(d, value_dim, std=value_dim ** -0.5)


def mamba2_weights(cfg, gen):
    """A Mamba2ForCausalLM's parameters, named as fla and Hugging Face name them (backbone.*, mixer.*)."""
    d, n = cfg["hidden_size"], cfg["state_size"]
    inner = cfg["expand"] * d
    h = inner // cfg["head_dim"]

    def normal(*shape, std):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * std

    w = {"backbone.embeddings.weight": normal(VOCAB, d, std=1.0)}
    for i in range(cfg["num_hidden_layers"]):
        pre = f"backbone.layers.{i}."
        w[pre + "norm.weight"] = 1 + normal(d, std=0.2)
        m = pre + "mixer."
        w[m + "in_proj.weight"] = normal(2 * inner + 2 * n + h, d, std=d ** -0.5)
        w[m + "conv1d.weight"] = normal(inner + 2 * n, 1, cfg["conv_kernel"], std=0.5)
        w[m + "conv1d.bias"] = normal(inner + 2 * n, std=0.5)
        w[m + "A_log"] = torch.log(torch.rand(h, generator=gen, dtype=torch.float64) * 15 + 1)
        dt = torch.exp(torch.rand(h, generator=gen, dtype=torch.float64) * (math.log(0.1) - math.log(0.001))
                       + math.log(0.001))
        w[m + "dt_bias"] = dt + torch.log(-torch.expm1(-dt))
        w[m + "D"] = 1 + normal(h, std=0.5)
        w[m + "norm.weight"] = 1 + normal(inner, std=0.2)
        w[m + "out_proj.weight"] = normal(d, inner, std=inner ** -0.5)
    w["backbone.norm_f.weight"] = 1 + normal(d, std=0.2)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = normal(VOCAB, d, std=d ** -0.5)
    return w


# --- files -----------------------------------------------------------------------------------------------------------

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def write_fixture(folder, cfg, gated, seed, dtype, shards, fla_init=False):
    os.makedirs(folder, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    weights = make_weights(cfg, gated, gen, fla_init)
    stored = {k: v.to(dtype) for k, v in weights.items()}
    # The reference reads the weights as stored (rounded to bf16 where they are bf16), in float64.
    ids = torch.randint(0, VOCAB, (T,), generator=gen)
    with torch.no_grad():
        reference = logits({k: v.to(torch.float64) for k, v in stored.items()}, cfg, ids, gated)
    config = dict(cfg, vocab_size=VOCAB, torch_dtype={torch.float32: "float32", torch.bfloat16: "bfloat16"}[dtype],
                  transformers_version="4.53.0")
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    names = list(stored)
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), stored)
    else:
        weight_map, size = {}, 0
        for s in range(shards):
            file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: stored[n] for n in names[s::shards]}
            write_safetensors(os.path.join(folder, file), part)
            weight_map.update({n: file for n in part})
            size += sum(t.numel() * t.element_size() for t in part.values())
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": size}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
            f.write("\n")
    write_safetensors(os.path.join(folder, "reference.safetensors"), {"input_ids": ids, "logits": reference.float()})


COMMON = dict(attn=None, conv_size=4, use_short_conv=True, hidden_act="swish", max_position_embeddings=2048,
              hidden_ratio=4, initializer_range=0.02, bos_token_id=1, eos_token_id=2, pad_token_id=None,
              use_cache=True, fuse_norm=True, fuse_swiglu=True, fuse_cross_entropy=True,
              fuse_linear_cross_entropy=False, use_l2warp=False, attn_mode="chunk", allow_neg_eigval=False)

GDN = dict(COMMON, model_type="gated_deltanet", architectures=["GatedDeltaNetForCausalLM"], hidden_size=32,
           num_hidden_layers=2, num_heads=2, num_v_heads=None, head_dim=16, expand_v=2.0, use_gate=True,
           intermediate_size=64, norm_eps=1e-6, tie_word_embeddings=False)

GLA = dict({k: v for k, v in COMMON.items() if k != "allow_neg_eigval"}, model_type="gla",
           architectures=["GLAForCausalLM"], hidden_size=32, num_hidden_layers=2, num_heads=2, num_kv_heads=None,
           expand_k=0.5, expand_v=1, feature_map=None, use_short_conv=False, use_output_gate=True, clamp_min=None,
           elementwise_affine=True, use_gk=True, use_gv=False, intermediate_size=64, norm_eps=1e-6,
           tie_word_embeddings=False)

DELTA = dict(COMMON, model_type="delta_net", architectures=["DeltaNetForCausalLM"], hidden_size=32,
             num_hidden_layers=2, num_heads=4, expand_k=1.0, expand_v=1.0, use_gate=False, use_beta=True,
             use_output_norm=True, qk_norm="l2", qk_activation="silu", intermediate_size=None, norm_eps=1e-5,
             tie_word_embeddings=True)


KDA = dict(COMMON, model_type="kda", architectures=["KDAForCausalLM"], hidden_size=32, num_hidden_layers=2,
           num_heads=2, num_v_heads=None, head_dim=16, expand_v=1.0, safe_gate=False, lower_bound=None,
           intermediate_size=64, norm_eps=1e-6, tie_word_embeddings=False, attnres_block_size=None)

GDP = dict(COMMON, model_type="gated_deltaproduct", architectures=["GatedDeltaProductForCausalLM"], hidden_size=32,
           num_hidden_layers=2, num_heads=2, head_dim=16, expand_v=1.0, use_output_gate=True, use_forget_gate=True,
           num_householder=2, allow_neg_eigval=True, intermediate_size=64, norm_eps=1e-6, tie_word_embeddings=False,
           attnres_block_size=None)

# fla's Mamba2Config keys (json writes the infinite upper dt limit as Infinity, as Python's json module does).
MAMBA2 = dict(model_type="mamba2", architectures=["Mamba2ForCausalLM"], hidden_size=32, num_hidden_layers=2,
              state_size=16, expand=2, head_dim=16, num_heads=4, conv_kernel=4, n_groups=1, use_bias=False,
              use_conv_bias=True, conv_init=None, A_init_range=[1, 16], D_has_hdim=False, hidden_act="silu",
              initializer_range=0.02, residual_in_fp32=True, dt_min=0.001, dt_max=0.1, dt_init_floor=1e-4,
              dt_limit=[0.0, float("inf")], rescale_prenorm_residual=True, use_cache=True, rmsnorm=True,
              norm_before_gate=False, chunk_size=256, norm_eps=1e-5, fuse_norm=True, fuse_cross_entropy=True,
              fuse_linear_cross_entropy=False, use_l2warp=False, tie_word_embeddings=False, bos_token_id=1,
              eos_token_id=2, pad_token_id=0)

# Hugging Face transformers' Mamba2Config keys for the same architecture.
MAMBA2_HF = dict(model_type="mamba2", architectures=["Mamba2ForCausalLM"], hidden_size=32, num_hidden_layers=3,
                 state_size=8, expand=2, head_dim=8, num_heads=8, conv_kernel=3, n_groups=1, use_bias=False,
                 use_conv_bias=True, hidden_act="silu", initializer_range=0.1, residual_in_fp32=True,
                 time_step_rank="auto", time_step_min=0.001, time_step_max=0.1, time_step_floor=1e-4,
                 time_step_limit=[0.0, float("inf")], rescale_prenorm_residual=False, use_cache=True, rms_norm=True,
                 chunk_size=256, layer_norm_epsilon=1e-5, tie_word_embeddings=True, bos_token_id=0, eos_token_id=2,
                 pad_token_id=1)


def main(out):
    # fla's own rule for an intermediate_size of None: int(D * hidden_ratio * 2 / 3) rounded up to a multiple of 256.
    delta = dict(DELTA)
    inter = int(delta["hidden_size"] * delta["hidden_ratio"] * 2 / 3)
    delta_weights_cfg = dict(delta, intermediate_size=256 * ((inter + 255) // 256))
    write_fixture(os.path.join(out, "gated-deltanet"), GDN, True, 1, torch.float32, 1)
    write_fixture(os.path.join(out, "gated-deltanet-bf16-sharded"), GDN, True, 2, torch.bfloat16, 2)
    # A hybrid: layer 1 of 3 is fla's attention (rotary, a sliding window of 16 tokens), the others Gated DeltaNet.
    hybrid = dict(GDN, num_hidden_layers=3, max_position_embeddings=2048,
                  attn={"layers": [1], "num_heads": 2, "num_kv_heads": 2, "qkv_bias": False, "window_size": 16,
                        "rope_theta": 10000.0})
    write_fixture(os.path.join(out, "gated-deltanet-hybrid"), hybrid, True, 5, torch.float32, 1)
    write_fixture(os.path.join(out, "gla"), GLA, False, 6, torch.float32, 1)
    write_fixture(os.path.join(out, "gla-conv-ungated"), dict(GLA, use_short_conv=True, use_output_gate=False,
                                                                tie_word_embeddings=True), False, 7, torch.float32, 1)
    # At fla's initialisation scale the short convolutions' outputs are small, so how q and k are L2-normalised shows.
    write_fixture(os.path.join(out, "gated-deltanet-init-scale"), GDN, True, 4, torch.float32, 1, fla_init=True)
    write_fixture(os.path.join(out, "kda"), KDA, False, 10, torch.float32, 1)
    # A hybrid: layer 1 of 3 is fla's attention over the whole context.
    write_fixture(os.path.join(out, "kda-hybrid"), dict(KDA, num_hidden_layers=3, attn={
        "layers": [1], "num_heads": 2, "num_kv_heads": 2, "qkv_bias": False, "window_size": None, "rope_theta": 10000.0}),
        False, 11, torch.float32, 1)
    # Negative eigenvalues: beta = 2 sigmoid(.), so I - beta k k^T can reflect.
    write_fixture(os.path.join(out, "gated-deltanet-neg-eigval"), dict(GDN, allow_neg_eigval=True), True, 12,
                  torch.float32, 1)
    write_fixture(os.path.join(out, "gated-deltaproduct"), GDP, False, 13, torch.float32, 1)
    # DeltaProduct without the forget gate or the output gate: three writes per token.
    write_fixture(os.path.join(out, "deltaproduct-3"), dict(GDP, use_forget_gate=False, use_output_gate=False,
                                                           num_householder=3, allow_neg_eigval=False), False, 14,
                  torch.float32, 1)
    write_fixture(os.path.join(out, "mamba2"), MAMBA2, False, 8, torch.float32, 1)
    write_fixture(os.path.join(out, "mamba2-hf-bf16"), MAMBA2_HF, False, 9, torch.bfloat16, 1)
    # The config keeps intermediate_size null, as fla writes it; the weights use the size fla derives.
    folder = os.path.join(out, "delta-net")
    write_fixture(folder, delta_weights_cfg, False, 3, torch.float32, 1)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    config["intermediate_size"] = None
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/Mnemo.Tests/Fixtures/fla")
