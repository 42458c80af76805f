       IDENTIFICATION DIVISION.
       PROGRAM-ID. CODECPROG.
      * Interface used by the codec tests; its layout is codecrec.cpy.
       DATA DIVISION.
       LINKAGE SECTION.
       COPY codecrec.
       01 LK-NOTE PIC X(8).
       PROCEDURE DIVISION USING CR-REC LK-NOTE.
           GOBACK.
