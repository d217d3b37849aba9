using Mnemo.Layers;
using Mnemo.Memory.Episodic;
using Mnemo.Models;
using Mnemo.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// EM-LLM's parts: the surprise rule, boundary refinement on a graph with planted communities, the retrieval mask, and
/// the reader over a trained model, which equals full attention when every event is retrieved.
/// </summary>
[Collection(TorchCollection.Name)]
public class EpisodicTests
{
    [Fact]
    public void A_token_opens_an_event_when_its_surprise_exceeds_the_running_mean_plus_gamma_deviations()
    {
        // Surprise alternates 1, 2 (μ = 1.5, σ = 0.5 over any even window), with spikes of 5 at 20 and 23 and 3.5 at 30.
        var s = Enumerable.Range(0, 40).Select(t => t == 0 ? double.NaN : t % 2 == 0 ? 1.0 : 2.0).ToArray();
        (s[20], s[23], s[30]) = (5, 5, 3.5);
        // at 30 the window [22, 30) holds the spike at 23: μ = 1.875, σ ≈ 1.27, so T = 3.40 for γ = 1.2 and 3.78 for 1.5
        Assert.Equal([20, 23, 30], SurpriseBoundaries.Find(s, 1, 0, gamma: 1.2, window: 8, minEvent: 2, maxEvent: 100));
        Assert.Equal([20, 23], SurpriseBoundaries.Find(s, 1, 0, gamma: 1.5, window: 8, minEvent: 2, maxEvent: 100));
        Assert.Equal([20], SurpriseBoundaries.Find(s, 1, 0, gamma: 1.5, window: 8, minEvent: 4, maxEvent: 100));   // 23 too close
        Assert.Equal([10, 20, 23, 33], SurpriseBoundaries.Find(s, 1, 0, gamma: 1.5, window: 8, minEvent: 2, maxEvent: 10));
        Assert.Equal([23], SurpriseBoundaries.Find(s, 21, 20, gamma: 1.5, window: 8, minEvent: 2, maxEvent: 100));   // continues
        double mean = 1.5, sd = 0.5;
        Assert.Equal(mean + 2 * sd, SurpriseBoundaries.Threshold(s, 12, 2, 8), 12);
    }

    /// <summary>Two communities [0, 10) and [10, 20): weight 1 inside, 0.1 across.</summary>
    static Tensor Planted()
    {
        var group = arange(20).lt(10);
        return where(group.unsqueeze(1).eq(group.unsqueeze(0)), 1.0, 0.1).to(float64);
    }

    [Theory]
    [InlineData(RefinementKind.Modularity)]
    [InlineData(RefinementKind.Conductance)]
    public void Refinement_moves_a_boundary_to_the_edge_of_the_planted_communities(RefinementKind metric)
    {
        using var scope = NewDisposeScope();
        Assert.Equal([10], BoundaryRefinement.Refine(Planted(), 0, [13], 6, minEvent: 2, metric));
        Assert.Equal([10], BoundaryRefinement.Refine(Planted(), 0, [12], 2, minEvent: 2, metric));  // window [0, 17)
        Assert.Equal([8], BoundaryRefinement.Refine(Planted(), 0, [8], 6, minEvent: 2, metric));    // it never moves later
        // the same graph seen from position 100 on
        Assert.Equal([110], BoundaryRefinement.Refine(Planted(), 100, [113], 106, minEvent: 2, metric));
        Assert.True(BoundaryRefinement.Modularity(Planted(), 10) > BoundaryRefinement.Modularity(Planted(), 13));
        Assert.True(BoundaryRefinement.Conductance(Planted(), 10) < BoundaryRefinement.Conductance(Planted(), 7));
    }

    [Fact]
    public void Modularity_is_newmans_formula()
    {
        using var scope = NewDisposeScope();
        // Two disjoint edges 0–1 and 2–3: the split {0, 1 | 2, 3} has Q = 1/2.
        var a = zeros(4, 4, float64);
        foreach (var (i, j) in new[] { (0, 1), (2, 3) }) { a[i, j] = 1; a[j, i] = 1; }
        Assert.Equal(0.5, BoundaryRefinement.Modularity(a, 2), 12);
        Assert.Equal(1.0, BoundaryRefinement.Conductance(a, 1), 12);                   // cut 1, vol{0} = 1
    }

    static EpisodicConfig Config(int memory, double contiguity = 0) =>
        new() { InitTokens = 2, LocalTokens = 4, MemoryTokens = memory, Block = 3, Contiguity = contiguity };

    [Fact]
    public void A_block_reads_the_init_tokens_its_window_and_the_events_that_match_it()
    {
        using var scope = NewDisposeScope();
        // 20 keys after which 3 queries come; memory = [2, 16); events [2, 6), [6, 9), [9, 13), [13, 16) …
        var q = ones(1, 1, 3, 2, float64);
        var k = zeros(1, 1, 23, 2, float64);
        k[0, 0, 10] = tensor(new[] { 5.0, 5.0 });                                       // event [9, 13) matches best
        k[0, 0, 3] = tensor(new[] { 2.0, 2.0 });                                        // then [2, 6)
        IReadOnlyList<IReadOnlyList<int>> starts = [new[] { 6, 9, 13, 16, 18 }];
        bool[] Read(EpisodicConfig c) => EventRetrieval.Mask(q, k, 20, starts, c).select(2, 0).flatten().data<bool>().ToArray();
        int[] Positions(bool[] read) => Enumerable.Range(0, read.Length).Where(j => read[j]).ToArray();
        int[] local = [.. Enumerable.Range(16, 7)];
        Assert.Equal([0, 1, .. Enumerable.Range(9, 4), .. local], Positions(Read(Config(4))));
        Assert.Equal([0, 1, .. Enumerable.Range(2, 4), .. Enumerable.Range(9, 4), .. local], Positions(Read(Config(8))));
        // 6 tokens: [9, 13) fits, [2, 6) would overflow to 8, as far from 6 as 4 is: left out
        Assert.Equal([0, 1, .. Enumerable.Range(9, 4), .. local], Positions(Read(Config(6))));
        Assert.Equal([0, 1, .. local], Positions(Read(Config(0))));
        // contiguity: half of 8 → the best event (4 tokens) and its neighbours that fit 4 tokens: [6, 9) (3)
        Assert.Equal([0, 1, .. Enumerable.Range(6, 7), .. local], Positions(Read(Config(8, 0.5))));
        Assert.True(Read(Config(14)).All(r => r), "a budget of the whole memory reads every key");
    }

    [Theory]
    [InlineData(PositionKind.None, RefinementKind.None, true)]
    [InlineData(PositionKind.Rope, RefinementKind.Modularity, false)]
    public void With_every_event_retrieved_the_reader_equals_full_attention(PositionKind positions, RefinementKind refinement,
        bool reposition)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(TinyModels.Config(MixerKind.Attention, c => c with { Positions = positions }));
        var tokens = TinyModels.Tokens(2, 29);
        var c = new EpisodicConfig
        {
            InitTokens = 2, LocalTokens = 4, MemoryTokens = 29, Block = 5, Gamma = 0, MinEvent = 2, MaxEvent = 6, Refinement = refinement,
            Reposition = reposition,                                                    // moves nothing without rotary positions
        };
        var read = EpisodicReader.Read(model, tokens, c);
        Assert.All(read.Boundaries, b => Assert.True(b.Count >= 4, $"{b.Count} boundaries"));
        Assert.True(Equivalence.RelativeRms(read.Logits, model.forward(tokens)) <= 1e-12);
        var window = EpisodicReader.Read(model, tokens, c with { MemoryTokens = 0 });
        Assert.True(Equivalence.RelativeRms(window.Logits, model.forward(tokens)) > 1e-6, "a window alone reads less");
        Assert.True(window.KeysPerQuery < read.KeysPerQuery);
        Assert.Null(model.MixersOf<Attention>()[0].Mixer.KeySelection);
    }

    [Fact]
    public void A_rotary_model_reads_moved_keys_at_one_distance()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(TinyModels.Config(MixerKind.Attention));
        var c = new EpisodicConfig { InitTokens = 2, LocalTokens = 6, MemoryTokens = 40, Block = 3, Gamma = 0, MinEvent = 2, MaxEvent = 6 };
        // Everything within the first window: nothing lies before it, nothing moves, and the reader is full attention.
        var short_ = TinyModels.Tokens(2, 9);
        Assert.True(Equivalence.RelativeRms(EpisodicReader.Read(model, short_, c).Logits, model.forward(short_)) <= 1e-12);
        // Longer: the keys before each block's window are read at one position (differs from full attention), and moving
        // them is what differs: kept at their own positions the reader is full attention again.
        var tokens = TinyModels.Tokens(2, 24);
        var moved = EpisodicReader.Read(model, tokens, c).Logits;
        Assert.True(Equivalence.RelativeRms(moved.narrow(1, 0, 6), model.forward(tokens).narrow(1, 0, 6)) <= 1e-12, "first window");
        Assert.True(Equivalence.RelativeRms(moved, model.forward(tokens)) > 1e-6, "moved keys");
        Assert.True(Equivalence.RelativeRms(EpisodicReader.Read(model, tokens, c with { Reposition = false }).Logits,
            model.forward(tokens)) <= 1e-12);
    }

    [Fact]
    public void A_model_without_attention_is_refused()
    {
        var model = TinyModels.Build(TinyModels.Config(MixerKind.GatedDeltaNet));
        var error = Assert.Throws<ArgumentException>(() => EpisodicReader.Read(model, TinyModels.Tokens(1, 8), new EpisodicConfig()));
        Assert.Contains("attention", error.Message);
    }
}
