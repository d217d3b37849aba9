using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>MemMamba's note pool: which notes a token reads, the read against its equation token by token, and the pool a
/// stream carries. (Streaming ≡ the full forward and every gradient: MixerTests.)</summary>
[Collection(TorchCollection.Name)]
public class MemMambaTests
{
    static int[][] Reads(Tensor mask) =>
        [.. Enumerable.Range(0, (int)mask.shape[1]).Select(i =>
            Enumerable.Range(0, (int)mask.shape[2]).Where(j => mask[0, i, j].item<bool>()).ToArray())];

    [Fact]
    public void A_token_reads_the_last_p_notes_written_before_it()
    {
        using var scope = NewDisposeScope();
        var written = tensor(new[] { true, false, true, true, false, true }).unsqueeze(0);
        Assert.Equal([[], [0], [0], [0, 2], [2, 3], [2, 3]], Reads(NotePool.PoolMask(written, 0, 2)));
        // A carried pool of two slots (padding, then one note) before a piece that writes its first token:
        var carried = tensor(new[] { false, true, true, false }).unsqueeze(0);
        Assert.Equal([[1], [1, 2]], Reads(NotePool.PoolMask(carried, 2, 2)));
    }

    [Fact]
    public void The_read_is_the_attention_over_the_pool_token_by_token()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        TorchRuntime.Seed(11);
        var c = new ModelConfig { DModel = 8, NumHeads = 2, Memmamba = new() { PoolSize = 3, NoteDim = 4, Threshold = 0.5 } };
        var layer = new MemMamba(c, c.Matrix, c.Memmamba);
        layer.to(float64);
        var p = layer.named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter);
        Tensor Linear(string name, Tensor v)
        {
            name = name == "g_proj" ? name : "notes." + name;                         // the pool's own projections
            return v.matmul(p[name + ".weight"].T) + (p.TryGetValue(name + ".bias", out var bias) ? bias : 0.0);
        }
        var x = randn([1, 12, 8], float64, generator: new Generator(2));
        var actual = layer.ReadNotes(x, null);
        var notes = new List<int>();
        for (int t = 0; t < 12; t++)
        {
            var xt = x[0, t];
            var pool = notes.TakeLast(3).ToList();
            var read = zeros(8, float64);
            if (pool.Count > 0)
            {
                var q = Linear("q_proj", xt);
                var s = pool.Select(j => Linear("note_proj", x[0, j])).ToList();
                var scores = stack(s.Select(sj => (q * Linear("k_proj", sj)).sum() / 2.0).ToArray()).softmax(0);   // √d_s = 2
                for (int n = 0; n < pool.Count; n++)
                    read += scores[n] * Linear("importance", x[0, pool[n]]).sigmoid() * Linear("v_proj", s[n]);
            }
            var expected = xt + Linear("g_proj", xt).sigmoid() * read;
            Assert.True(Equivalence.RelativeRms(actual[0, t], expected) <= 1e-12, $"token {t}");
            if (Linear("importance", xt).sigmoid().item<double>() > 0.5) notes.Add(t);
        }
        Assert.InRange(notes.Count, 4, 11);                                             // the case exercises selection and the bound
    }

    [Fact]
    public void A_stream_carries_each_rows_last_p_notes()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        TorchRuntime.Seed(12);
        var c = new ModelConfig { DModel = 8, NumHeads = 2, Memmamba = new() { PoolSize = 3, NoteDim = 4, Threshold = 0.5 } };
        var layer = new MemMamba(c, c.Matrix, c.Memmamba);
        layer.to(float64);
        var x = randn([3, 20, 8], float64, generator: new Generator(3));
        var whole = layer.ReadNotes(x, null);
        using var cache = new LayerCache();
        var pieces = new[] { (0, 1), (1, 6), (7, 1), (8, 12) }.Select(r => layer.ReadNotes(x.narrow(1, r.Item1, r.Item2), cache)).ToArray();
        Assert.True(Equivalence.RelativeRms(cat(pieces, 1), whole) <= 1e-12);
        Assert.True(cache.Get("keys")!.shape[1] <= 3);
    }
}
