using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// A leaky-rate RNN with a trainable timescale per neuron (Khajehabdollahi, Zeraati et al. 2024, arXiv 2309.12927;
/// docs/timescales.md#the-network):
/// <code>
/// h_t = LeakyReLU((1 − 1/τ) ⊙ h_{t−1} + (W_hh h_{t−1} + W_in x_t + b) / τ)
/// </code>
/// with τ ≥ 1 per neuron (initialised 1 + U(0, 1); <see cref="ClampTimescales"/> after every optimiser step), the diagonal
/// of W_hh held at zero (a neuron's memory of itself is its τ, not a self-connection), and a fixed start
/// h_0 = 0.1 · U(0, 1) drawn once. <see cref="Ablation"/> silences neurons and <see cref="Noise"/> perturbs the state at
/// every step (the robustness measurements).
/// </summary>
public sealed class LeakyRnn : nn.Module<Tensor, Tensor>
{
    readonly Linear input_proj, recurrent;
    readonly Parameter tau;
    readonly Tensor h0, off_diagonal;

    /// <param name="inputs">width of x_t</param>
    /// <param name="units">neurons</param>
    public LeakyRnn(int inputs, int units) : base(nameof(LeakyRnn))
    {
        input_proj = nn.Linear(inputs, units);
        recurrent = nn.Linear(units, units, hasBias: false);
        tau = nn.Parameter(1 + rand(units));
        h0 = 0.1 * rand(units);
        off_diagonal = 1 - eye(units);
        using (no_grad()) recurrent.weight!.mul_(off_diagonal);
        RegisterComponents();                                                           // h0 and off_diagonal are buffers
    }

    /// <summary>τ per neuron [H].</summary>
    public Tensor Timescales => tau;

    /// <summary>Neurons held at zero at every step (null = none): a bool mask [H].</summary>
    public Tensor? Ablation { get; set; }

    /// <summary>Standard deviation of Gaussian noise added to h at every step (0 = none), from <see cref="NoiseGenerator"/>.</summary>
    public double Noise { get; set; }

    public Generator? NoiseGenerator { get; set; }

    /// <summary>τ ← max(τ, 1), as the paper does after each step.</summary>
    public void ClampTimescales()
    {
        using var noGrad = no_grad();
        tau.clamp_min_(1);
    }

    /// <param name="x">[B, T, inputs]</param>
    /// <returns>the states h_1 … h_T, [B, T, H]</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var drive = input_proj.forward(x);                                              // W_in x_t + b for every t [B, T, H]
        var weight = recurrent.weight! * off_diagonal;                                   // W_hh with its diagonal at 0
        var keep = 1 - 1 / tau;
        var h = h0.expand(b, -1);
        var alive = Ablation is null ? null : Ablation.logical_not().to(x.dtype);
        var states = new Tensor[t];
        for (long i = 0; i < t; i++)
        {
            h = nn.functional.leaky_relu(keep * h + (h.matmul(weight.T) + drive.select(1, i)) / tau);
            if (Noise > 0) h = h + Noise * randn(h.shape, dtype: h.dtype, generator: NoiseGenerator);
            if (alive is not null) h = h * alive;
            states[i] = h;
        }
        return stack(states, 1).MoveToOuterDisposeScope();
    }
}
