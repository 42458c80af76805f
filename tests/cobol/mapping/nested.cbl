       IDENTIFICATION DIVISION.
       PROGRAM-ID. NESTED.
      * Groups inside groups inside tables: offsets restart per element.
       DATA DIVISION.
       LINKAGE SECTION.
       01 LK-HEAD.
          03 LK-H1         PIC X(3).
          03 LK-H2.
             07 LK-H2A     PIC 9(3) COMP-3.
             07 LK-H2B.
                09 LK-H2B1 PIC X(5).
                09 FILLER  PIC X(1).
                09 LK-H2B2 PIC S9(2)V9 SIGN LEADING.
       01 LK-TABLE.
          02 LK-COUNT      PIC 9(4) COMP-5.
          02 LK-ROW OCCURS 3.
             04 LK-KEY     PIC X(4).
             04 LK-SUB.
                06 LK-FLAGS PIC X OCCURS 3.
                06 LK-VALS OCCURS 2.
                   08 LK-V1 PIC S9(9) COMP.
                   08 LK-V2 PIC X(3).
             04 LK-TAIL    PIC 9(2).
          02 LK-END        PIC X(2).
       PROCEDURE DIVISION USING LK-HEAD LK-TABLE.
           GOBACK.
