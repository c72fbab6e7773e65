import { useMemo } from 'react';
import { inventedSegments, showMasks } from '../lib/samples.ts';

/** A sample's text, MASKs as ░, its invented words (spans into `text`, when checked) underlined. */
export function MarkedText({ text, invented }: { text: string; invented?: readonly (readonly [number, number])[] }) {
  const segments = useMemo(() => inventedSegments(text, invented), [text, invented]);
  return (
    <>
      {segments.map((g, i) =>
        g.invented ? (
          <span key={i} className="invented" title="not found in the training text">
            {showMasks(g.text)}
          </span>
        ) : (
          showMasks(g.text)
        ),
      )}
    </>
  );
}

/** The legend line of a view that underlines invented words. */
export function InventedLegend({ testId }: { testId?: string }) {
  return (
    <span className="muted" data-testid={testId}>
      <span className="invented">underlined</span>: a word found nowhere in the training text
    </span>
  );
}
