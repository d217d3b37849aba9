namespace Mnemo.Evaluation;

/// <summary>
/// Zoology's MQAR metric: per example, the fraction of labelled positions whose argmax equals the label; then the
/// mean over examples. Accumulates across batches; one accumulator per slice. Also counts exact matches (every
/// labelled position right), the passkey / S-NIAH score.
/// </summary>
sealed class RecallAccuracy
{
    double _sum;
    long _examples, _exact;

    public long Examples => _examples;
    public double Value => _examples == 0 ? double.NaN : _sum / _examples;

    /// <summary>Fraction of examples with every labelled position right.</summary>
    public double ExactMatch => _examples == 0 ? double.NaN : (double)_exact / _examples;

    /// <summary>Adds one example given its number of correct and labelled positions.</summary>
    public void AddExample(int correct, int labelled)
    {
        if (labelled == 0) return; // an example with nothing to score does not count
        _sum += (double)correct / labelled;
        _examples++;
        if (correct == labelled) _exact++;
    }

    public void Add(RecallAccuracy other)
    {
        _sum += other._sum;
        _examples += other._examples;
        _exact += other._exact;
    }
}
