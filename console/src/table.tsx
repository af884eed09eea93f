import type { ComponentChildren, HTMLAttributes } from 'preact';

/**
 * One column of a DataTable. `cell` renders a row's value; `sortKey` makes the header a sort button (the
 * caller sorts: orderings differ per table); `rowHeader` makes the cell the row's header (th scope=row),
 * which screen readers announce with every other cell of the row; `header` replaces the header's content
 * (a select-all box).
 */
export interface Column<T> {
  label: string;
  cell: (row: T) => ComponentChildren;
  sortKey?: string;
  rowHeader?: boolean;
  class?: string;
  title?: string;
  header?: ComponentChildren;
}

export type Sort = { key: string; dir: 1 | -1 };

/**
 * The console's one table: scrolls sideways in its own box (the page never does, down to a phone), always has
 * a caption (its accessible name: visible or for screen readers only), column headers scoped, sort state in
 * aria-sort. Every panel renders its rows through it, so these hold everywhere.
 */
export function DataTable<T>({
  caption,
  showCaption = false,
  columns,
  rows,
  class: className,
  rowProps,
  sort,
  onSort,
  empty,
}: {
  caption: string;
  showCaption?: boolean;
  columns: Column<T>[];
  rows: T[];
  class?: string;
  rowProps?: (row: T) => HTMLAttributes<HTMLTableRowElement> & Record<string, unknown>;
  sort?: Sort;
  onSort?: (key: string) => void;
  /** Shown instead of the table when there are no rows; unset: the table shows with an empty body. */
  empty?: ComponentChildren;
}) {
  if (rows.length === 0 && empty !== undefined) return <p>{empty}</p>;
  return (
    <div class="table-wrap">
      <table class={className}>
        <caption class={showCaption ? undefined : 'sr-only'}>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => {
              const sorted = sort && c.sortKey !== undefined ? (sort.key === c.sortKey ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none') : undefined;
              return (
                <th scope="col" title={c.title} aria-sort={sorted}>
                  {c.header ??
                    (c.sortKey !== undefined && onSort ? (
                      <button type="button" class="sort" onClick={() => onSort(c.sortKey!)}>
                        {c.label}
                        <span aria-hidden="true">{sorted === 'ascending' ? ' ▲' : sorted === 'descending' ? ' ▼' : ''}</span>
                      </button>
                    ) : (
                      c.label
                    ))}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr {...(rowProps?.(r) ?? {})}>
              {columns.map((c) =>
                c.rowHeader ? (
                  <th scope="row" class={c.class}>
                    {c.cell(r)}
                  </th>
                ) : (
                  <td class={c.class}>{c.cell(r)}</td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The next sort after a click on `key`: the same column flips, another starts ascending. */
export const nextSort = (s: Sort, key: string): Sort => ({ key, dir: s.key === key ? ((-s.dir) as 1 | -1) : 1 });
