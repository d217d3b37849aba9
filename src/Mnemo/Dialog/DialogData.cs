using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>
/// Word ids of the dialogs' closed vocabulary: 0 pads, every word the grammar uses has an id. Unknown words are an
/// error, since the grammar is closed.
/// </summary>
public sealed class DialogWords
{
    readonly Dictionary<string, int> _ids = new() { ["<pad>"] = 0 };

    public DialogWords(IEnumerable<string> texts)
    {
        foreach (var text in texts)
            foreach (var word in Split(text))
                _ids.TryAdd(word, _ids.Count);
    }

    /// <summary>Ids in use, the padding's included.</summary>
    public int Count => _ids.Count;

    public int[] Encode(string text) => [.. Split(text).Select(w =>
        _ids.TryGetValue(w, out int id) ? id : throw new MnemoException($"the word \"{w}\" is not in the dialogs' vocabulary"))];

    static string[] Split(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>
/// Each question's candidate answers, VisDial's way (docs/dialog.md#the-candidates): the human answer, up to
/// <c>plausible</c> answers given to questions of the same template in the training dialogs, the <c>popular</c> most
/// frequent training answers, and random answers from the pool until there are <c>count</c>, all distinct and shuffled.
/// Candidates are indices into <see cref="SceneDialogs.AllAnswers"/>.
/// </summary>
public sealed class CandidateSets
{
    readonly Dictionary<QuestionKind, int[]> _plausible;
    readonly int[] _popular;
    readonly int _count, _plausibleCount;

    public CandidateSets(IReadOnlyList<SceneDialog> training, int count, int plausible, int popular)
    {
        foreach (var (field, problem) in Problems(count, plausible, popular))
            throw new MnemoException($"data.{field}: {problem}");
        var answers = training.SelectMany(d => d.Rounds).ToArray();
        _plausible = answers.GroupBy(r => r.Kind)
            .ToDictionary(g => g.Key, g => g.Select(r => IndexOf(r.Answer)).Distinct().Order().ToArray());
        _popular = [.. answers.GroupBy(r => IndexOf(r.Answer)).OrderByDescending(g => g.Count()).ThenBy(g => g.Key)
            .Take(popular).Select(g => g.Key)];
        _count = count;
        _plausibleCount = plausible;
    }

    /// <summary>What is wrong with these counts (data.candidates, data.plausible, data.popular), by field.</summary>
    public static IEnumerable<(string Field, string Problem)> Problems(int count, int plausible, int popular)
    {
        if (plausible + popular + 1 > count)
            yield return ("plausible", $"plausible + popular + the human answer ({plausible} + {popular} + 1) exceed candidates ({count})");
        if (count > SceneDialogs.AllAnswers.Count)
            yield return ("candidates", $"{count} candidates need as many distinct answers; the dialogs can give " +
                $"{SceneDialogs.AllAnswers.Count}");
    }

    public static int IndexOf(string answer) => AnswerIndex.TryGetValue(answer, out int i) ? i
        : throw new MnemoException($"\"{answer}\" is not an answer the dialogs can give");

    static readonly Dictionary<string, int> AnswerIndex =
        SceneDialogs.AllAnswers.Select((a, i) => (a, i)).ToDictionary(x => x.a, x => x.i);

    /// <summary>The candidates of one round, drawn from <paramref name="rng"/>, and where the human answer is among them.</summary>
    public (int[] Candidates, int Truth) For(DialogRound round, Random rng)
    {
        int truth = IndexOf(round.Answer);
        var chosen = new List<int> { truth };
        var seen = new HashSet<int> { truth };
        void Add(int a) { if (chosen.Count < _count && seen.Add(a)) chosen.Add(a); }
        if (_plausible.TryGetValue(round.Kind, out var same))
            foreach (int a in same.OrderBy(_ => rng.Next()).Where(a => a != truth).Take(_plausibleCount)) Add(a);
        foreach (int a in _popular) Add(a);
        while (chosen.Count < _count) Add(rng.Next(SceneDialogs.AllAnswers.Count));
        var order = chosen.OrderBy(_ => rng.Next()).ToArray();
        return (order, Array.IndexOf(order, truth));
    }
}

/// <summary>
/// B dialogs as tensors (docs/dialog.md#the-encoders). Token tensors are right-padded with 0 and come with
/// their lengths; every per-round tensor is [B·R, …], dialog-major.
/// </summary>
public sealed class DialogBatch : IDisposable
{
    public required int Dialogs { get; init; }
    /// <summary>The scene description, the image's stand-in: [B, L] and lengths [B].</summary>
    public required (Tensor Tokens, Tensor Lengths) Description { get; init; }
    /// <summary>The caption: [B, L] and [B].</summary>
    public required (Tensor Tokens, Tensor Lengths) Caption { get; init; }
    /// <summary>Round r's question: [B·R, L] and [B·R].</summary>
    public required (Tensor Tokens, Tensor Lengths) Questions { get; init; }
    /// <summary>Round r's history fact, the text before its question: the caption for r = 0, else round r − 1's question and
    /// answer. [B·R, L] and [B·R].</summary>
    public required (Tensor Tokens, Tensor Lengths) Facts { get; init; }
    /// <summary>Round r's whole history, concatenated: the caption and rounds 0 … r − 1. [B·R, L] and [B·R].</summary>
    public required (Tensor Tokens, Tensor Lengths) History { get; init; }
    /// <summary>Candidate answers as indices into the answer pool: [B, R, N].</summary>
    public required Tensor Candidates { get; init; }
    /// <summary>Where the human answer is among the candidates: [B, R].</summary>
    public required Tensor Truth { get; init; }

    public void Dispose()
    {
        foreach (var t in new[] { Description, Caption, Questions, Facts, History })
        {
            t.Tokens.Dispose();
            t.Lengths.Dispose();
        }
        Candidates.Dispose();
        Truth.Dispose();
    }

    /// <summary>Dialogs <paramref name="dialogs"/> with their candidates (each [R, N] candidates and [R] truths).</summary>
    public static DialogBatch Of(DialogWords words, IReadOnlyList<SceneDialog> dialogs,
        IReadOnlyList<(int[] Candidates, int Truth)[]> candidates)
    {
        int b = dialogs.Count, rounds = SceneDialogs.Rounds, n = candidates[0][0].Candidates.Length;
        var facts = new List<int[]>();
        var history = new List<int[]>();
        foreach (var d in dialogs)
        {
            var sofar = new List<int>(words.Encode(d.Caption));
            for (int r = 0; r < rounds; r++)
            {
                facts.Add(r == 0 ? words.Encode(d.Caption) : words.Encode(d.Rounds[r - 1].Question + " " + d.Rounds[r - 1].Answer));
                if (r > 0) sofar.AddRange(facts[^1]);
                history.Add([.. sofar]);
            }
        }
        var options = new long[b * rounds * n];
        var truth = new long[b * rounds];
        for (int i = 0; i < b; i++)
            for (int r = 0; r < rounds; r++)
            {
                Array.Copy(candidates[i][r].Candidates.Select(c => (long)c).ToArray(), 0, options, (i * rounds + r) * n, n);
                truth[i * rounds + r] = candidates[i][r].Truth;
            }
        return new DialogBatch
        {
            Dialogs = b,
            Description = Padded([.. dialogs.Select(d => words.Encode(d.Description))]),
            Caption = Padded([.. dialogs.Select(d => words.Encode(d.Caption))]),
            Questions = Padded([.. dialogs.SelectMany(d => d.Rounds.Select(r => words.Encode(r.Question)))]),
            Facts = Padded(facts),
            History = Padded(history),
            Candidates = tensor(options).view(b, rounds, n),
            Truth = tensor(truth).view(b, rounds),
        };
    }

    /// <summary>Sequences right-padded with 0 to the longest: [N, L] int64 and lengths [N].</summary>
    public static (Tensor Tokens, Tensor Lengths) Padded(IReadOnlyList<int[]> sequences)
    {
        int longest = sequences.Max(s => s.Length);
        if (sequences.Any(s => s.Length == 0)) throw new MnemoException("an empty text cannot be encoded");
        var values = new long[sequences.Count * longest];
        for (int i = 0; i < sequences.Count; i++)
            for (int j = 0; j < sequences[i].Length; j++) values[i * longest + j] = sequences[i][j];
        return (tensor(values).view(sequences.Count, longest), tensor(sequences.Select(s => (long)s.Length).ToArray()));
    }
}
