using System.Text;
using LLama;
using LLama.Common;
using LLama.Exceptions;
using LLama.Native;
using LLama.Sampling;
using Mnemo.Writing;

namespace Mnemo.Llama;

/// <summary>
/// A local GGUF model as RecurrentGPT's generator (docs/writing.md#a-local-gguf-model), run by llama.cpp through
/// LLamaSharp on the CPU: each call feeds the prompt to a fresh context and samples up to <c>tokens</c> tokens
/// (temperature, top-k; the seed is the run's seed, the call's index and the attempt, so a run repeats). Nothing is
/// downloaded: the user points to a file. llama.cpp's log goes to <see cref="Log"/>, not to the terminal; its error
/// lines explain a failed load.
/// </summary>
public sealed class LlamaGenerator : IPassageGenerator, IDisposable
{
    static readonly List<string> Lines = [];
    static readonly Lazy<bool> Quiet = new(() =>
    {
        // Must be set before llama.cpp's first call; afterwards the library is loaded and the setting is fixed.
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level is LLamaLogLevel.Error or LLamaLogLevel.Warning)
                lock (Lines) Lines.Add(message.TrimEnd());
        });
        return true;
    });

    readonly LLamaWeights _weights;
    readonly ModelParams _params;
    readonly int _tokens, _topK, _context;
    readonly float _temperature;
    readonly long _seed;
    int _calls;

    LlamaGenerator(string path, LLamaWeights weights, ModelParams parameters, int tokens, double temperature, int topK, long seed)
    {
        Path = path;
        _weights = weights;
        _params = parameters;
        (_tokens, _temperature, _topK, _seed) = (tokens, (float)temperature, topK, seed);
        _context = (int)parameters.ContextSize!.Value;
    }

    /// <summary>The GGUF file.</summary>
    public string Path { get; }

    public string Name => $"gguf ({System.IO.Path.GetFileName(Path)})";

    /// <summary>llama.cpp's warnings and errors so far in this process.</summary>
    public static IReadOnlyList<string> Log
    {
        get
        {
            lock (Lines) return [.. Lines];
        }
    }

    /// <summary>
    /// Loads a GGUF model. A missing file, a file that is not GGUF, or one llama.cpp cannot load is refused naming the
    /// file and, for the last, llama.cpp's reason.
    /// </summary>
    /// <param name="contextSize">the context llama.cpp allocates (prompt and output must fit)</param>
    /// <param name="threads">CPU threads; 0 = llama.cpp's default</param>
    public static LlamaGenerator Open(string path, int tokens, double temperature, int topK, long seed, int contextSize = 4096,
        int threads = 0)
    {
        if (tokens < 1) throw new MnemoException($"tokens per step must be at least 1, got {tokens}");
        if (!double.IsFinite(temperature) || temperature < 0) throw new MnemoException($"temperature must be ≥ 0, got {temperature}");
        if (topK < 0) throw new MnemoException($"top-k must be ≥ 0 (0 = all tokens), got {topK}");
        if (!File.Exists(path)) throw new MnemoException($"--gguf: {path} does not exist");
        var magic = new byte[4];
        using (var file = File.OpenRead(path))
            if (file.Read(magic) < 4 || Encoding.ASCII.GetString(magic) != "GGUF")
                throw new MnemoException($"--gguf: {path} is not a GGUF file (it does not start with the bytes \"GGUF\")");
        _ = Quiet.Value;
        int before = Log.Count;
        var parameters = new ModelParams(path)
        {
            ContextSize = (uint)contextSize, GpuLayerCount = 0, Threads = threads > 0 ? threads : null,
        };
        try
        {
            return new LlamaGenerator(path, LLamaWeights.LoadFromFile(parameters), parameters, tokens, temperature, topK, seed);
        }
        catch (LoadWeightsFailedException)
        {
            var reasons = Log.Skip(before).ToList();
            throw new MnemoException($"--gguf: llama.cpp could not load {path}" +
                (reasons.Count == 0 ? "" : ": " + string.Join("; ", reasons)));
        }
    }

    public string Generate(string prompt, int attempt)
    {
        prompt = Fitted(prompt);
        var executor = new StatelessExecutor(_weights, _params);
        var sampling = new DefaultSamplingPipeline
        {
            Temperature = _temperature,
            TopK = _topK,
            Seed = unchecked((uint)(_seed * 1_000_003 + _calls++ * 31 + attempt)),
        };
        var output = new StringBuilder();
        var pieces = executor.InferAsync(prompt, new InferenceParams { MaxTokens = _tokens, SamplingPipeline = sampling });
        // The loop is synchronous; the executor yields pieces as it samples them.
        var e = pieces.GetAsyncEnumerator();
        try
        {
            while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult()) output.Append(e.Current);
        }
        catch (LLamaDecodeError error)
        {
            throw new MnemoException($"llama.cpp failed while generating from {Path}: {error.Message}");
        }
        finally
        {
            e.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return output.ToString();
    }

    /// <summary>
    /// The prompt's end, as much of it as fits in the context with the tokens to sample (a prompt longer than the context
    /// would fail in llama.cpp): characters are dropped from the front until its tokens fit.
    /// </summary>
    string Fitted(string prompt)
    {
        int budget = _context - _tokens - 1;                                            // llama.cpp needs one slot spare
        if (budget < 1)
            throw new MnemoException($"the context of {_context} tokens leaves no room for a prompt before {_tokens} sampled tokens");
        for (int count; (count = _weights.Tokenize(prompt, true, false, Encoding.UTF8).Length) > budget;)
            prompt = prompt[Math.Min(prompt.Length, count - budget)..];
        return prompt;
    }

    public void Dispose() => _weights.Dispose();
}
