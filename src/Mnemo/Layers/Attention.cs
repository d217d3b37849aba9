using Mnemo.Memory.Landmark;
using Mnemo.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Causal multi-head softmax attention through libtorch's scaled_dot_product_attention, with rotary or no
/// positions (learned ones live in the model's embedding), an optional sliding window and optional short
/// convolutions on q, k, v. Parameter names follow fla's Attention: q_proj, k_proj, v_proj, o_proj,
/// q_conv1d, k_conv1d, v_conv1d.
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly Projection q_proj, k_proj, v_proj, o_proj;
    readonly ShortConvolution? q_conv1d, k_conv1d, v_conv1d;
    readonly int _heads, _headDim, _window, _landmarkBlock, _landmarkTopK;
    readonly bool _rotary, _liger;
    readonly int _chunk;

    /// <param name="c">the model's common dims</param>
    /// <param name="attention">model.attention</param>
    /// <param name="liger">Liger attention (docs/mechanisms.md#liger-attention): the same weights, read half by this
    /// (sliding-window) softmax attention and half by the gated recurrent branch built from them</param>
    public Attention(ModelConfig c, AttentionConfig attention, bool liger = false) : base(nameof(Attention))
    {
        _liger = liger;
        _chunk = c.Matrix.ChunkSize;
        _heads = c.NumHeads;
        _headDim = c.HeadDim;
        _window = attention.Window;
        _landmarkBlock = attention.LandmarkBlock;
        _landmarkTopK = attention.LandmarkTopK;
        _rotary = c.Positions == PositionKind.Rope;
        q_proj = new Projection(c.DModel, c.DModel, hasBias: false);
        k_proj = new Projection(c.DModel, c.DModel, hasBias: false);
        v_proj = new Projection(c.DModel, c.DModel, hasBias: false);
        o_proj = new Projection(c.DModel, c.DModel, hasBias: false);
        if (attention.ShortConv ?? c.ShortConv)
        {
            q_conv1d = new ShortConvolution(c.DModel, c.ConvSize);
            k_conv1d = new ShortConvolution(c.DModel, c.ConvSize);
            v_conv1d = new ShortConvolution(c.DModel, c.ConvSize);
        }
        RegisterComponents();
    }

    /// <param name="x">[B, T, D]</param>
    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>Per-head factors [H] on the heads' outputs before o_proj (0 removes a head), or null for none: the
    /// retrieval-heads ablation (docs/mechanisms.md#retrieval-heads).</summary>
    public Tensor? HeadMask { get; set; }

    /// <summary>With a cache, which of the cached keys each new query reads besides causality (EM-LLM's episodic
    /// retrieval, docs/mechanisms.md#em-llm-episodic-memory); null reads them all.</summary>
    public IKeySelection? KeySelection { get; set; }

    /// <summary>When true, every forward also forms its attention weights softmax(q kᵀ / √Dh, causal) explicitly and
    /// keeps them, detached, in <see cref="Weights"/> [B, H, T, T_keys]; the output still comes from SDPA. Turning it off
    /// frees them.</summary>
    public bool RecordWeights
    {
        get => _record;
        set
        {
            _record = value;
            if (value) return;
            Weights?.Dispose();
            Weights = null;
        }
    }

    bool _record;

    /// <summary>The latest recorded attention weights (see <see cref="RecordWeights"/>); this layer owns them.</summary>
    public Tensor? Weights { get; private set; }

    public Tensor Forward(Tensor x, LayerCache? cache) => Forward(x, cache, null);

    /// <summary>
    /// With a cache, the new tokens attend to every cached key plus themselves (a KV cache); with a sliding
    /// window only the last window − 1 keys are kept, so memory stays flat. <paramref name="persistent"/> [Np, D]
    /// are extra input-independent tokens (Titans' persistent memory) whose keys every query sees, whatever the window.
    /// </summary>
    public Tensor Forward(Tensor x, LayerCache? cache, Tensor? persistent)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var (rawQ, rawK, v) = ProjectHeads(x, cache);                                  // [B, T, H, Dh]
        Tensor? recurrent = null;
        if (_liger)
        {
            var (read, state) = LigerBranch.Run(rawQ, rawK, v, cache?.Get("state"), _chunk, streaming: cache is not null);
            if (cache is not null) cache.Set("state", state);
            recurrent = read.transpose(1, 2);                                            // [B, H, T, Dh]
        }
        // Landmark attention rotates where it reads: retrieved blocks move (Landmark), so its cache keeps keys unrotated.
        var (q, k) = _landmarkBlock > 0 ? (rawQ, rawK) : Rotate(rawQ, rawK, cache?.Position ?? 0);
        (q, k, v) = (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));           // [B, H, T, Dh]
        long past = 0;
        if (cache is not null && _window == 0)
        {
            past = cache.KvLength;
            (k, v) = KvBuffer.Append(cache, k, v);                                       // [B, H, past + T, Dh]
        }
        else if (cache?.Get("k") is { } pastK)
        {
            // Sliding window: the cache holds only the last window − 1 keys, so concatenating is cheap.
            past = pastK.shape[2];
            k = cat([pastK, k], 2);
            v = cat([cache.Get("v")!, v], 2);
        }
        if (cache is not null && _window > 0)
        {
            long keep = Math.Min(_window - 1, k.shape[2]);
            cache.Set("k", k.narrow(2, k.shape[2] - keep, keep));
            cache.Set("v", v.narrow(2, v.shape[2] - keep, keep));
        }
        Tensor o;
        var clock = KernelClock.Begin();
        (q, k, v) = (clock.In(q)!, clock.In(k)!, clock.In(v)!);
        // bf16 under training.precision bf16 where that is faster (libtorch's CPU attention keeps the softmax and its sums
        // in fp32).
        if (_landmarkBlock == 0)
            (q, k, v) = (MixedPrecision.AttentionOperand(q), MixedPrecision.AttentionOperand(k), MixedPrecision.AttentionOperand(v));
        if (_landmarkBlock > 0)
        {
            // In the input's precision: the grouped softmax is formed here, not in libtorch's attention kernel.
            if (persistent is not null) throw new InvalidOperationException("landmark attention takes no persistent tokens");
            o = Landmark(q, k, v, past);
        }
        else if (persistent is not null)
        {
            var (pk, pv) = PersistentKeys(persistent, b);                               // [B, H, Np, Dh]
            (pk, pv) = (MixedPrecision.AttentionOperand(pk), MixedPrecision.AttentionOperand(pv));
            var mask = cat([ones(t, pk.shape[2], ScalarType.Bool, x.device), CausalMask(t, past, _window, x.device)], 1);
            o = nn.functional.scaled_dot_product_attention(q, cat([pk, k], 2), cat([pv, v], 2), attn_mask: mask);
        }
        else if (KeySelection is not null && cache is not null)
        {
            var mask = KeySelection.Select(q, k, past).logical_and(CausalMask(t, past, _window, x.device));    // [B, 1, T, past + T]
            o = SelectedRead(q, k, v, mask, _rotary ? KeySelection.MovedBefore(past) : null);
        }
        else if (past == 0 && (_window == 0 || _window >= t))
            o = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        else
            o = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: CausalMask(t, past, _window, x.device));
        if (RecordWeights && persistent is null && _landmarkBlock == 0) Record(q, k, CausalMask(t, past, _window, x.device));
        o = clock.Out(MixedPrecision.Result(o));
        if (recurrent is not null) o = 0.5 * o + 0.5 * recurrent.to(o.dtype);            // Liger attention's even mix
        if (HeadMask is not null) o = o * HeadMask.to(o.dtype).view(1, _heads, 1, 1);    // [B, H, T, Dh]
        return Output(o).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Landmark attention (docs/mechanisms.md#landmark-attention) of q [B, H, T, Dh] at positions past … over every key
    /// from position 0: in training the grouped softmax over every block, otherwise each query's own block and its
    /// landmark_top_k best earlier blocks (every block when 0). q and k arrive unrotated: with rotary positions, the
    /// training form rotates every key at its position, the top-k form the retrieved blocks at the positions it moves
    /// them to (GroupedSoftmax.Retrieve). <see cref="RecordWeights"/> keeps the grouped softmax's weights between the
    /// input's tokens (landmarks left out); the top-k form forms none.
    /// </summary>
    Tensor Landmark(Tensor q, Tensor k, Tensor v, long past)
    {
        static Tensor At(Tensor x, Tensor positions) => RotaryEmbedding.ApplyAt(x, positions);
        if (training || _landmarkTopK == 0)
        {
            if (_rotary)                                                                 // every key where it is
                (q, k) = (At(q, arange(past, past + q.shape[2])), At(k, arange(k.shape[2])));
            var (o, weights) = GroupedSoftmax.Dense(q, k, v, _landmarkBlock, past);
            if (RecordWeights)
            {
                // Kept at the input's positions, as for plain attention: the landmarks' rows and (never read) columns go.
                Tensor Tokens(long from, long count) => tensor(Enumerable.Range(0, (int)count).Select(i => from + i)
                    .Where(p => !GroupedSoftmax.IsLandmark(p, _landmarkBlock)).ToArray(), device: q.device);
                Weights?.Dispose();
                Weights = weights.detach().index_select(2, Tokens(past, q.shape[2])).index_select(3, Tokens(0, k.shape[2]))
                    .DetachFromDisposeScope();
            }
            return o;
        }
        if (RecordWeights)
            throw new MnemoException("attention weights of landmark attention are those of the grouped softmax over every " +
                "block: set model.attention.landmark_top_k=0 (mnemo heads: --set model.attention.landmark_top_k=0)");
        return GroupedSoftmax.Retrieve(q, k, v, _landmarkBlock, past, _landmarkTopK, rotate: _rotary ? At : null);
    }

    /// <summary>
    /// Attention of q [B, H, T, Dh] over only the keys its mask [B, 1, T, N] lets any query of the row read: those keys
    /// and values are gathered first (rows padded to the longest with keys no query reads), so the cost follows what is
    /// read, not the cache's length. Equals SDPA over every key with the mask. With <paramref name="movedBefore"/> P, every
    /// read key from before P is first rotated on to position P − 1 (keys are cached rotated at their own positions, and
    /// rotations add up), so a rotary model reads them all at one distance.
    /// </summary>
    static Tensor SelectedRead(Tensor q, Tensor k, Tensor v, Tensor mask, long? movedBefore)
    {
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], dh = q.shape[3];
        var used = mask.any(2).squeeze(1);                                              // [B, N]
        long count = used.sum(1).max().item<long>();
        // the read keys first, in cache order: a stable sort of "not read"
        var order = used.logical_not().to(ScalarType.Int32).sort(1, stable: true).Indices.narrow(1, 0, count);  // [B, K]
        var keys = k.gather(2, order.view(b, 1, count, 1).expand(b, h, count, dh));    // [B, H, K, Dh]
        if (movedBefore is { } p)
        {
            var at = order.to(ScalarType.Int64);
            keys = RotaryEmbedding.ApplyAt(keys, where(at.lt(p), p - 1 - at, zeros_like(at)).view(b, 1, count));
        }
        var values = v.gather(2, order.view(b, 1, count, 1).expand(b, h, count, v.shape[3]));
        var allowed = mask.gather(3, order.view(b, 1, 1, count).expand(b, 1, t, count));   // [B, 1, T, K]
        return nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask: allowed);
    }

    void Record(Tensor q, Tensor k, Tensor allowed)
    {
        var dtype = q.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;             // bf16 operands: fp32
        var scores = q.to(dtype).matmul(k.to(dtype).transpose(-1, -2)) * Math.Pow(_headDim, -0.5);       // [B, H, T, T_keys]
        var weights = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity).softmax(-1);
        Weights?.Dispose();
        Weights = weights.detach().DetachFromDisposeScope();
    }

    /// <summary>q, k, v of x [B, T, D] as [B, H, T, Dh] (SDPA's layout): projections, short convolutions (continuing
    /// from the cache), rotary positions from <paramref name="offset"/>.</summary>
    public (Tensor Q, Tensor K, Tensor V) Project(Tensor x, LayerCache? cache, long offset)
    {
        var (q, k, v) = ProjectHeads(x, cache);
        (q, k) = Rotate(q, k, offset);
        return (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
    }

    /// <summary>q, k, v [B, T, H, Dh]: projections and short convolutions, no positions yet.</summary>
    (Tensor Q, Tensor K, Tensor V) ProjectHeads(Tensor x, LayerCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor q = q_proj.forward(x), k = k_proj.forward(x), v = v_proj.forward(x);   // [B, T, D]
        if (q_conv1d is not null)
        {
            q = q_conv1d.Forward(q, cache, "q_conv");
            k = k_conv1d!.Forward(k, cache, "k_conv");
            v = v_conv1d!.Forward(v, cache, "v_conv");
        }
        return (q.view(b, t, _heads, _headDim), k.view(b, t, _heads, _headDim), v.view(b, t, _heads, _headDim));
    }

    /// <summary>Rotary positions on q, k [B, T, H, Dh] from <paramref name="offset"/> (none without rope).</summary>
    (Tensor Q, Tensor K) Rotate(Tensor q, Tensor k, long offset) =>
        _rotary ? (RotaryEmbedding.Apply(q, offset), RotaryEmbedding.Apply(k, offset)) : (q, k);

    /// <summary>Keys and values [B, H, Np, Dh] of persistent tokens p [Np, D]: projected only — no convolution (they
    /// are not a sequence) and no rotation (they have no position; every query sees them alike).</summary>
    public (Tensor K, Tensor V) PersistentKeys(Tensor p, long batch)
    {
        long n = p.shape[0];
        Tensor Heads(Tensor a) => a.view(1, n, _heads, _headDim).transpose(1, 2).expand(batch, -1, -1, -1);
        return (Heads(k_proj.forward(p)), Heads(v_proj.forward(p)));
    }

    /// <summary>Attention output o [B, H, T, Dh] → o_proj → [B, T, D].</summary>
    public Tensor Output(Tensor o) => o_proj.forward(o.transpose(1, 2).reshape(o.shape[0], o.shape[2], _heads * _headDim));

    /// <summary>[T, past + T] boolean mask for T new queries after <paramref name="past"/> cached keys: query i
    /// (absolute past + i) sees key j when 0 ≤ past + i − j &lt; window (no upper limit when window is 0).</summary>
    public static Tensor CausalMask(long t, long past, long window, Device device)
    {
        var i = arange(past, past + t, device: device).unsqueeze(1);
        var j = arange(past + t, device: device).unsqueeze(0);
        var diff = i - j;
        var allowed = diff.ge(0);
        return window > 0 ? allowed.logical_and(diff.lt(window)) : allowed;
    }
}

/// <summary>Which cached keys a block of new queries reads (<see cref="Attention.KeySelection"/>).</summary>
public interface IKeySelection
{
    /// <summary>q [B, H, T, Dh] of T new queries after <paramref name="past"/> cached keys, k [B, H, past + T, Dh] every key
    /// as the cache holds it → bool [B, 1, T, past + T], true where a query may read a key (causality is applied on top).</summary>
    Tensor Select(Tensor q, Tensor k, long past);

    /// <summary>For a rotary model: the read keys from before this position are read as if they sat just before it
    /// (EM-LLM and InfLLM place their memory at one distance); null keeps every key at its own position.</summary>
    long? MovedBefore(long past);
}
