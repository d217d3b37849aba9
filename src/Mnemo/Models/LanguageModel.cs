using Mnemo.Layers;
using Mnemo.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>Pre-norm block: x + mixer(norm(x)), then x + mlp(norm(x)) (fla: attn_norm, attn, mlp_norm, mlp).</summary>
public sealed class Block : nn.Module<Tensor, Tensor>
{
    readonly RMSNorm attn_norm;
    readonly nn.Module<Tensor, Tensor> attn;
    readonly RMSNorm? mlp_norm;
    readonly SwiGLU? mlp;

    /// <param name="layer">the block's place in the stack (RWKV-7's first layer and its initial values depend on it)</param>
    public Block(ModelConfig c, MixerKind mixer, int layer = 0) : base(nameof(Block))
    {
        attn_norm = new RMSNorm(c.DModel, c.NormEps);
        attn = CreateMixer(mixer, c, layer);
        if (c.MlpHidden > 0)
        {
            mlp_norm = new RMSNorm(c.DModel, c.NormEps);
            mlp = new SwiGLU(c.DModel, c.MlpHidden);
        }
        RegisterComponents();
    }

    public static nn.Module<Tensor, Tensor> CreateMixer(MixerKind kind, ModelConfig c, int layer = 0) => kind switch
    {
        MixerKind.Attention => new Attention(c, c.Attention),
        MixerKind.LinearAttention => new LinearAttention(c, c.Matrix),
        MixerKind.Retnet => new RetNet(c, c.Matrix),
        MixerKind.Gla => new Gla(c, c.Matrix),
        MixerKind.Mamba2 => new Mamba2(c, c.Matrix),
        MixerKind.DeltaNet => new DeltaNet(c, c.Matrix),
        MixerKind.GatedDeltaNet => new GatedDeltaNet(c, c.Matrix),
        MixerKind.Kda => new Kda(c, c.Matrix),
        MixerKind.Gdn2 => new Gdn2(c, c.Matrix),
        MixerKind.Comba => new Comba(c, c.Matrix),
        MixerKind.Rwkv7 => new Rwkv7(c, c.Matrix, first: Enumerable.Range(0, layer).All(i => c.MixerOf(i) != MixerKind.Rwkv7), layer,
            c.NumLayers),
        MixerKind.Mlstm => new Mlstm(c, c.Matrix),
        MixerKind.Mamba3 => new Mamba3(c, c.Matrix),
        MixerKind.LogLinearMamba2 => new LogLinearMamba2(c, c.Matrix),
        MixerKind.MesaNet => new MesaNet(c, c.Matrix),
        MixerKind.LogLinearGatedDeltaNet => new LogLinearGatedDeltaNet(c, c.Matrix),
        MixerKind.Mom => new MixtureOfMemoriesMixer(c, c.Matrix, c.Mom),
        MixerKind.TitansMac => new MemoryAsContext(c, c.Deep, c.Titans),
        MixerKind.TitansMag => new MemoryAsGate(c, c.Attention, c.Deep, c.Titans),
        MixerKind.TitansMal => new MemoryAsLayer(c, c.Attention, c.Deep, c.Titans),
        MixerKind.Aaren => new Aaren(c),
        MixerKind.Lstm or MixerKind.Gru => new RecurrentCell(c, kind),
        MixerKind.Memmamba => new MemMamba(c, c.Matrix, c.Memmamba),
        MixerKind.SynapticResonance => new SynapticResonance(c, c.Matrix, c.Synaptic),
        MixerKind.PrefixLinearAttention => new PrefixLinearAttention(c, c.Matrix),
        MixerKind.LigerAttention => new Attention(c, c.Attention, liger: true),
        _ when ModelConfig.DeepRule(kind) is { } rule => new DeepMemoryMixer(c, c.Deep, rule),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown mixer"),
    };

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>This block's token mixer (fla: attn).</summary>
    public nn.Module<Tensor, Tensor> Mixer => attn;

    /// <summary>The mixer's auxiliary loss term from the latest training forward (see <see cref="IAuxiliaryLoss"/>).</summary>
    public Tensor? TakeAuxLoss() => (attn as IAuxiliaryLoss)?.TakeAuxLoss();

    /// <param name="prefix">prompt lengths [B] for a mixer that reads a prefix non-causally (<see cref="IPrefixMixer"/>);
    /// the other mixers ignore it</param>
    public Tensor Forward(Tensor x, LayerCache? cache, Tensor? prefix = null)
    {
        using var scope = NewDisposeScope();
        var mixed = prefix is not null && attn is IPrefixMixer reader
            ? reader.Forward(attn_norm.forward(x), cache, prefix)
            : ((IStreamingMixer)attn).Forward(attn_norm.forward(x), cache);
        var h = x + mixed;
        if (mlp is not null) h = h + mlp.forward(mlp_norm!.forward(h));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>The decoder stack (fla: "model."): embeddings, optional learned positions, layers, final norm.</summary>
public sealed class Backbone : nn.Module<Tensor, Tensor>
{
    readonly Embedding embeddings;
    readonly Embedding? position_embeddings;
    readonly ModuleList<Block> layers;
    readonly RMSNorm norm;
    readonly LatentReweaving? reweaving;             // model.reweaving: the latent states of every level, rewoven after the last block
    readonly Parameter? landmark;                    // landmark attention's token [1, D] (Landmarks)
    readonly int _landmarkBlock;

    public Backbone(ModelConfig c) : base(nameof(Backbone))
    {
        embeddings = nn.Embedding(c.VocabSize, c.DModel);
        _landmarkBlock = c.Attention.LandmarkBlock;
        if (_landmarkBlock > 0) landmark = nn.Parameter(zeros(1, c.DModel));           // drawn by LanguageModel's init
        if (c.Positions == PositionKind.Learned) position_embeddings = nn.Embedding(c.MaxPositions, c.DModel);
        layers = nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(i => new Block(c, c.MixerOf(i), i)).ToArray());
        norm = new RMSNorm(c.DModel, c.NormEps);
        if (c.Reweaving.Enabled) reweaving = new LatentReweaving(c);
        RegisterComponents();
    }

    public Embedding Embeddings => embeddings;

    /// <param name="tokens">[B, T] int64</param>
    /// <returns>[B, T, D]</returns>
    public override Tensor forward(Tensor tokens) => Forward(tokens, null);

    /// <summary>With a cache, continues the sequence it holds (positions offset, every layer's state carried).
    /// <paramref name="prefix"/>: see <see cref="Block.Forward"/>.</summary>
    public Tensor Forward(Tensor tokens, ModelCache? cache, Tensor? prefix = null)
    {
        using var scope = NewDisposeScope();
        long offset = cache?.Position ?? 0, inner = offset;                            // inner: offset inside the layers
        var h = Positioned(embeddings.forward(tokens), offset);
        Tensor? kept = null;
        if (landmark is not null)
        {
            (h, kept) = Landmarks.Insert(h, landmark, offset, _landmarkBlock);           // [B, T', D]
            inner = Landmarks.Extended(offset, _landmarkBlock);
        }
        h = RunLayers(h, cache, inner, prefix);
        if (kept is not null) h = h.index_select(1, kept);                               // the input's own tokens [B, T, D]
        if (cache is not null) cache.Position = offset + tokens.shape[1];
        return norm.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>Token embeddings [B, T, D] of tokens [B, T], without positions.</summary>
    public Tensor Embed(Tensor tokens) => embeddings.forward(tokens);

    /// <summary>
    /// The layers and the final norm over an input that is already embedded, h [B, T, D], from position 0 and without a
    /// cache: a segment memory feeds vectors (its memory tokens) that are not tokens of the vocabulary.
    /// </summary>
    public Tensor ForwardEmbedded(Tensor h)
    {
        using var scope = NewDisposeScope();
        return norm.forward(RunLayers(Positioned(h, 0), null, 0, null)).MoveToOuterDisposeScope();
    }

    Tensor Positioned(Tensor h, long offset) => position_embeddings is null
        ? h
        : h + position_embeddings.forward(arange(offset, offset + h.shape[1], device: h.device)).unsqueeze(0);

    Tensor RunLayers(Tensor h, ModelCache? cache, long position, Tensor? prefix)
    {
        var levels = reweaving is null ? null : new List<Tensor> { h };
        Tensor? firstValues = null;                                                      // RWKV-7's value residual, this pass only
        try
        {
            for (int i = 0; i < layers.Count; i++)
            {
                var layerCache = cache?.Layers[i];
                if (layerCache is not null) layerCache.Position = position;
                if (layers[i].Mixer is IValueResidual shared) shared.FirstValues = firstValues;
                h = layers[i].Forward(h, layerCache, prefix);
                if (firstValues is null && layers[i].Mixer is IValueResidual { FirstValues: { } first }) firstValues = first;
                levels?.Add(h);
            }
        }
        finally
        {
            firstValues?.Dispose();
            foreach (var layer in layers)
                if (layer.Mixer is IValueResidual shared) shared.FirstValues = null;
        }
        return levels is null ? h : reweaving!.Reweave(levels, cache?.Reweaving);
    }

    public int LayerCount => layers.Count;

    public IEnumerable<Block> Layers => layers;
}

/// <summary>Streaming state of a whole model: one <see cref="LayerCache"/> per layer and the next position.</summary>
public sealed class ModelCache : IDisposable
{
    public ModelCache(int layers) => Layers = Enumerable.Range(0, layers).Select(_ => new LayerCache()).ToArray();

    public LayerCache[] Layers { get; }
    public long Position { get; set; }

    /// <summary>The pools of contextual memory reweaving (model.reweaving), one child per level.</summary>
    public LayerCache Reweaving { get; } = new();

    /// <summary>A segment memory's carried state (model.segments), created by its first streaming call.</summary>
    public SegmentStream? Segments { get; set; }

    /// <summary>Bytes held across all layers (KV caches grow with the context; memory states do not) and by the
    /// segment memory.</summary>
    public long Bytes => Layers.Sum(l => l.Bytes) + Reweaving.Bytes + (Segments?.Bytes ?? 0);

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        Reweaving.Dispose();
        Segments?.Dispose();
    }
}

/// <summary>
/// Causal language model (fla's *ForCausalLM layout): "model.*" and "lm_head". The head can be tied to the
/// embeddings, in which case there is no separate lm_head parameter.
/// </summary>
public sealed class LanguageModel : nn.Module<Tensor, Tensor>
{
    readonly Backbone model;
    readonly Projection? lm_head;
    readonly CompressionDecoder? compression_decoder;
    readonly SegmentMemory? segments;

    public ModelConfig Config { get; }

    /// <param name="config">the model, its vocabulary resolved</param>
    /// <param name="compressionTargets">rows of the compression decoder (MAD's compression task, its
    /// compression_targets); 0 = no decoder</param>
    public LanguageModel(ModelConfig config, int compressionTargets = 0) : base(nameof(LanguageModel))
    {
        if (config.VocabSize <= 0) throw new ArgumentException("vocab_size must be resolved before building a model", nameof(config));
        if (BidirectionalProblem(config) is { } problem) throw new ArgumentException($"model.rnn.bidirectional: {problem}", nameof(config));
        Config = config;
        model = new Backbone(config);
        if (!config.TieEmbeddings) lm_head = new Projection(config.DModel, config.VocabSize, hasBias: false);
        if (compressionTargets > 0) compression_decoder = new CompressionDecoder(config, compressionTargets);
        if (config.Segments.Enabled) segments = new SegmentMemory(config);
        RegisterComponents();
        InitialiseWeights(this, config);
    }

    /// <summary>Why a language model of this config would read ahead (a bidirectional recurrent cell), or null.</summary>
    public static string? BidirectionalProblem(ModelConfig c) =>
        c.Rnn.Bidirectional && Enumerable.Range(0, c.NumLayers).Any(i => c.MixerOf(i) is MixerKind.Lstm or MixerKind.Gru)
            ? "a language model predicts each token from the ones before it, and a backward cell would read " +
              "the tokens it predicts; bidirectional cells are for models that read a whole input first (mnemo forecast)"
            : null;

    /// <summary>Normal(0, model.init_std) for matrices and embeddings (as fla/HF do); norms stay at one, conv filters at
    /// PyTorch's default. Uses the global generator: seed it first for reproducible weights. Any model built from
    /// <see cref="Block"/>s initialises this way.</summary>
    public static void InitialiseWeights(nn.Module module, ModelConfig config)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            // RWKV-7's r_k [H, Dk] is a weight per channel, not a matrix: it keeps its own start (−0.04)
            if (p.dim() != 2 || name.EndsWith(".r_k", StringComparison.Ordinal)) continue;
            // An LSTM's or GRU's own matrices keep PyTorch's U(±1/√hidden): N(0, 0.02²) leaves their gates near 0.5 and
            // the recurrence nearly linear at the start.
            if (name.Contains(".weight_ih_", StringComparison.Ordinal) || name.Contains(".weight_hh_", StringComparison.Ordinal)) continue;
            if (config.OutputGateOpen && name.EndsWith(".g_proj.weight", StringComparison.Ordinal)) p.zero_();   // starts at silu(bias) = 1
            else nn.init.normal_(p, 0, config.InitStd);
        }
    }

    /// <summary>Final hidden states [B, T, D] for tokens [B, T]; <paramref name="prefix"/> [B]: the prompt lengths that a
    /// prefix-reading mixer reads non-causally (none: every mixer is causal).</summary>
    public Tensor Hidden(Tensor tokens, Tensor? prefix = null) =>
        segments is not null ? segments.Hidden(model, tokens, null) : model.Forward(tokens, null, prefix);

    /// <summary>The decoder stack (fla: "model.").</summary>
    public Backbone Backbone => model;

    /// <summary>The segment memory around the backbone (model.segments), or null.</summary>
    public SegmentMemory? SegmentMemory => segments;

    /// <summary>The final hidden states of tokens fed after what the cache holds (the backbone's, or the segment memory's).</summary>
    Tensor Continue(Tensor tokens, ModelCache cache, Tensor? prefix = null)
    {
        if (segments is null) return model.Forward(tokens, cache, prefix);
        var hidden = segments.Hidden(model, tokens, cache.Segments ??= new SegmentStream());
        cache.Position += tokens.shape[1];
        return hidden;
    }

    /// <summary>Whether some layer reads a prompt prefix non-causally (<see cref="IPrefixMixer"/>).</summary>
    public bool ReadsPrefix => model.Layers.Any(block => block.Mixer is IPrefixMixer);

    /// <summary>
    /// The prompt of each row, as a prefix-reading mixer sees it in training and evaluation: every position up to and
    /// including the first scored one (mask [B, T]); [B] int64, 0 for a row with no scored position. The label of a
    /// scored position p is token p + 1, which lies after the prompt, so no position reads the token it predicts.
    /// </summary>
    public static Tensor PromptLengths(Tensor mask)
    {
        using var scope = NewDisposeScope();
        var first = mask.to(ScalarType.Int64).argmax(1);                               // the first true, or 0 for none
        return where(mask.any(1), first + 1, zeros_like(first)).MoveToOuterDisposeScope();
    }

    /// <summary>Vocabulary logits for hidden states [..., D] → [..., V]. Taking only the positions that are scored
    /// before this call saves most of the head's cost on recall tasks.</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head is not null ? lm_head.forward(hidden) : MixedPrecision.Linear(hidden, model.Embeddings.weight!);

    /// <summary>
    /// Logits [N, V] of the scored positions (mask [B, T] true), in row-major order like labels[mask]: the head on
    /// each scored position's hidden state, or, for <see cref="Readout.Compression"/>, the compression decoder on the
    /// last position's hidden state and the target index t of each scored position.
    /// </summary>
    public Tensor ScoredLogits(Tensor tokens, Tensor mask, Readout readout = Readout.NextToken)
    {
        using var scope = NewDisposeScope();
        var prefix = readout == Readout.NextToken && ReadsPrefix ? PromptLengths(mask) : null;
        return ReadOut(Hidden(tokens, prefix), mask, readout).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="ScoredLogits"/> from the final hidden states [B, T, D].</summary>
    public Tensor ReadOut(Tensor hidden, Tensor mask, Readout readout = Readout.NextToken)
    {
        using var scope = NewDisposeScope();
        if (readout == Readout.NextToken) return Logits(hidden.index([TensorIndex.Tensor(mask)])).MoveToOuterDisposeScope();
        if (compression_decoder is null)
            throw new InvalidOperationException(
                "the compression readout needs a model built with compression targets (the MAD task's compression_targets > 0)");
        var at = mask.nonzero();                                                      // [N, 2]: (row, target index)
        var code = hidden.select(1, -1).index_select(0, at.select(1, 0));            // [N, D]
        return Logits(compression_decoder.forward(code, at.select(1, 1))).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        return Logits(Hidden(tokens)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The auxiliary losses of the latest training forward (MoM's router balance), summed over layers and weighted
    /// by router_aux_loss_coef, to add to the task loss; null when no layer made one. Each forward's terms are taken
    /// once. The result lives in the caller's dispose scope.
    /// </summary>
    public Tensor? TakeAuxLoss()
    {
        Tensor? total = null;
        foreach (var layer in model.Layers)
        {
            using var term = layer.TakeAuxLoss();                            // owned here; the sum keeps the graph
            if (term is not null) total = total is null ? term * Config.Mom.RouterAuxLossCoef : total + term * Config.Mom.RouterAuxLossCoef;
        }
        return total;
    }

    /// <summary>The layers whose mixer is a <typeparamref name="T"/>, with their index, in layer order.</summary>
    public IReadOnlyList<(int Layer, T Mixer)> MixersOf<T>() where T : class =>
        model.Layers.Select((block, i) => (Layer: i, Mixer: block.Mixer as T)).Where(m => m.Mixer is not null)
            .Select(m => (m.Layer, m.Mixer!)).ToList();

    /// <summary>A fresh streaming cache for this model.</summary>
    public ModelCache NewCache() => new(model.LayerCount);

    /// <summary>
    /// Streaming: feeds tokens [B, T] (one token or a prompt) after what the cache holds and returns their logits
    /// [B, T, V]. Memory layers carry an O(1) state; attention a KV cache. Feeding a sequence piece by piece
    /// gives the full forward pass's logits.
    /// </summary>
    /// <param name="prefix">prompt lengths [B] of a stream's first piece, for prefix-reading mixers</param>
    public Tensor Step(Tensor tokens, ModelCache cache, Tensor? prefix = null)
    {
        using var scope = NewDisposeScope();
        return Logits(Continue(tokens, cache, prefix)).MoveToOuterDisposeScope();
    }

    /// <summary>How far resident memory may grow past what the first piece of a <see cref="Prefill"/> needed.</summary>
    public const double PrefillMemorySlack = 0.2;

    /// <summary>
    /// Streams a long context into <paramref name="cache"/> in pieces of <paramref name="pieceLength"/> tokens (each a
    /// chunk-form call; no logits). tokens [B, T] int64. Returns how often freed native memory was handed back to the OS.
    /// <para>
    /// Why it does that: the live memory of a stream stays flat (the model and its states), but glibc's heap fragments
    /// under a long run of equal pieces, and resident memory kept growing (a 2-layer Gated DeltaNet model: 0.7 GB after
    /// 16k tokens, 1.9 GB after 1M; docs/architecture.md#long-streams). So the free pages are returned once at the
    /// start, and again whenever resident memory exceeds what the first piece needed by more than
    /// <see cref="PrefillMemorySlack"/>.
    /// </para>
    /// </summary>
    public int Prefill(Tensor tokens, ModelCache cache, int pieceLength = 4096)
    {
        if (tokens.dim() != 2)
            throw new ArgumentException($"tokens must be [B, T], got [{string.Join(", ", tokens.shape)}]", nameof(tokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(pieceLength, 1);
        long length = tokens.shape[1];
        NativeAllocator.ReleaseFreePages();
        var memory = new ResidentGuard(PrefillMemorySlack);
        for (long start = 0; start < length; start += pieceLength)
        {
            // Native memory that TorchSharp leaves to finalizers (its implicit Scalars) is freed now, not by the finalizer
            // thread in the middle of the next piece, where the scattered frees measurably fragmented the heap.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            using (NewDisposeScope())
            using (GcQuiet.Enter())
                Continue(tokens.narrow(1, start, Math.Min(pieceLength, length - start)), cache);
            memory.Check();
        }
        return memory.Releases;
    }

    public long ParameterCount() => parameters().Sum(p => p.numel());
}
